"""Data parallelism in the one training loop: 2 gloo ranks on CPU under torchrun follow the 1-rank
run with the same global batch (parameters within float tolerance after the same samples seen), and
a 2-rank run killed mid-way resumes to the weights of the uninterrupted 2-rank run."""
import json
import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest
import torch

from conftest import copy_repo, needs_unshare, run_cmd, signal_when_ready, torchrun_cmd
from trilemma.artifacts import load_tensors

pytestmark = [pytest.mark.slow, needs_unshare]

ENV = {"OMP_NUM_THREADS": "1"}
STATE = "results/ci/.resume/teacher_ddpm/state.pt"


def train_cmd(out):
    return ["-m", "trilemma", "train", "--profile", "ci", "--model", "teacher_ddpm",
            "--data", "results/ci/data/gauss25.safetensors", "--out", out, "--no-progress"]


def torchrun_train(out, *torchrun_args):
    """The ci teacher's training as two gloo ranks (``conftest.torchrun_cmd``)."""
    return torchrun_cmd(train_cmd(out), *torchrun_args)


@pytest.fixture(scope="module")
def ci_runs(tmp_path_factory):
    """A repository copy with the ci data, a 1-rank run (``one/``) and an uninterrupted 2-rank run
    (``two/``) of the ci teacher; the 2-rank run's process result."""
    repo = copy_repo(tmp_path_factory.mktemp("ddp") / "repo")
    run_cmd(["trilemma", "fetch-data", "--profile", "ci", "--dataset", "gauss25",
             "--out", "results/ci/data/gauss25.safetensors"], cwd=repo)
    run_cmd([sys.executable, *train_cmd("one/model.safetensors")], cwd=repo, env=ENV)
    proc = run_cmd(torchrun_train("two/model.safetensors"), cwd=repo, env=ENV)
    return repo, proc


def test_two_gloo_ranks_match_one_rank(ci_runs):
    repo, proc = ci_runs
    one, _ = load_tensors(repo / "one/model.safetensors")
    two, _ = load_tensors(repo / "two/model.safetensors")
    assert one.keys() == two.keys()
    for k in one:
        assert torch.allclose(one[k], two[k], rtol=1e-4, atol=1e-5), (k, (one[k] - two[k]).abs().max())
    assert not torch.equal(one["inp.weight"], torch.zeros_like(one["inp.weight"]))
    log = (repo / "two/train_log.jsonl").read_text().splitlines()
    assert log and '"samples_seen": 40000' in log[-1]  # the global batch, not 2x
    assert "wrote two/model.safetensors" in proc.stdout and proc.stdout.count("wrote two/") == 1


def processes_in(cwd: Path) -> dict[int, str]:
    """The live processes working in ``cwd``: pid -> command line."""
    found = {}
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and Path(os.readlink(d / "cwd")) == cwd:
                found[int(d.name)] = (d / "cmdline").read_text().replace("\0", " ")
        except OSError:  # gone, or a zombie
            pass
    return found


def test_killed_two_rank_training_resumes_to_the_uninterrupted_weights(ci_runs, tmp_path):
    base, _ = ci_runs
    repo = (tmp_path / "repo").resolve()
    shutil.copytree(base, repo)
    out, state = repo / "three/model.safetensors", repo / STATE
    assert not state.exists()  # the uninterrupted 2-rank run cleared its resume state
    # --tee 2: the ranks' stderr reaches ours prefixed with their rank ("[default0]:").
    cmd = torchrun_train("three/model.safetensors", "--tee", "2", "--log-dir", str(tmp_path / "torchrun-logs"))
    running = {}

    def ready():  # the first checkpoint is written: note the launch's processes, then kill them
        if state.exists():
            running.update(processes_in(repo))
        return bool(running)

    rc, _ = signal_when_ready(cmd, repo, ready, sig=signal.SIGKILL, env=ENV, group=True)
    assert rc == -signal.SIGKILL
    assert sum(" -u -m trilemma train " in c for c in running.values()) == 2, running  # both ranks seen
    # No rank outlives the launch (a moment for the kernel to tear the namespace down; the 150
    # remaining steps take far longer, so an orphan rank is still running then).
    deadline = time.time() + 2
    while (left := processes_in(repo)) and time.time() < deadline:
        time.sleep(0.05)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, left
    assert not out.exists() and state.exists()

    resumed = run_cmd(cmd, cwd=repo, env=ENV)
    starts = {rank: [int(s) for s in re.findall(rf"\[default{rank}\]:\[train teacher_ddpm\] resuming from step (\d+)",
                                                resumed.stderr)] for rank in (0, 1)}
    assert len(starts[0]) == 1 and 0 < starts[0][0] < 200, resumed.stderr[-4000:]
    assert starts[1] == starts[0]  # the ranks agree on the step they resume from
    assert "wrote three/model.safetensors" in resumed.stdout and resumed.stdout.count("wrote three/") == 1
    assert not state.exists()

    log = [json.loads(line) for line in (out.parent / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(20, 201, 20))  # no record lost or repeated
    assert all(r["samples_seen"] == 200 * r["step"] for r in log)  # the global batch, not 2x

    one, _ = load_tensors(base / "one/model.safetensors")
    two, _ = load_tensors(base / "two/model.safetensors")
    three, _ = load_tensors(out)
    assert three.keys() == two.keys() == one.keys()
    for k in three:
        assert torch.equal(three[k], two[k]), (k, (three[k] - two[k]).abs().max())
        assert torch.allclose(one[k], three[k], rtol=1e-4, atol=1e-5), (k, (one[k] - three[k]).abs().max())


def test_two_ranks_bill_the_teacher_evaluations_of_the_global_batch(ci_runs):
    """Consistency distillation as two gloo ranks: each rank counts its half of the batch, the bill
    sums them, so model.json bills what the 1-rank run does (issue 18)."""
    repo, _ = ci_runs
    run_cmd(["trilemma", "train", "--profile", "ci", "--model", "teacher_pd", "--data",
             "results/ci/data/gauss25.safetensors", "--out", "results/ci/models/teacher_pd/model.safetensors",
             "--no-progress"], cwd=repo, env=ENV)
    cd = ["-m", "trilemma", "consistency-distill", "--profile", "ci", "--teacher-dir", "results/ci/models/teacher_pd",
          "--data", "results/ci/data/gauss25.safetensors", "--no-progress", "--out"]
    run_cmd([sys.executable, *cd, "one_cd/model.safetensors"], cwd=repo, env=ENV)
    run_cmd(torchrun_cmd([*cd, "two_cd/model.safetensors"]), cwd=repo, env=ENV)
    bills = [json.loads((repo / d / "model.json").read_text())["bill"] for d in ("one_cd", "two_cd")]
    assert bills[0]["teacher_evals"] == bills[1]["teacher_evals"] == 20 * 100   # ci: 20 updates at batch 100
    assert bills[0]["updates"] == bills[1]["updates"] == 20
