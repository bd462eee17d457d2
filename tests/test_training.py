"""The one training loop: LR schedule closed forms, and exact resume after a kill (CPU)."""
import math
import signal

import pytest
import torch

from conftest import run_cmd, signal_when_ready
from trilemma.artifacts import load_tensors
from trilemma.training.loop import LoopConfig, lr_factor


def test_lr_factor_closed_forms():
    cfg = LoopConfig(samples=1000, batch_size=10, warmup_samples=100, lr_schedule="cosine", min_lr_ratio=0.1)
    assert lr_factor(cfg, 0) == 0.0
    assert math.isclose(lr_factor(cfg, 50), 0.5 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.05))))
    assert math.isclose(lr_factor(cfg, 1000), 0.1)
    lin = LoopConfig(samples=1000, batch_size=10, lr_schedule="linear", min_lr_ratio=0.0)
    assert math.isclose(lr_factor(lin, 250), 0.75)
    assert lr_factor(LoopConfig(samples=10, batch_size=1), 5) == 1.0


def train_cmd(out):
    return ["trilemma", "train", "--profile", "ci", "--model", "teacher_ddpm",
            "--data", "results/ci/data/gauss25.safetensors", "--out", str(out), "--no-progress"]


@pytest.mark.slow
def test_killed_training_resumes_to_identical_weights(repo_copy):
    env = {"OMP_NUM_THREADS": "1"}
    run_cmd(["trilemma", "fetch-data", "--profile", "ci", "--dataset", "gauss25",
             "--out", "results/ci/data/gauss25.safetensors"], cwd=repo_copy)
    ref = repo_copy / "ref/model.safetensors"
    run_cmd(train_cmd(ref), cwd=repo_copy, env=env)
    assert not (repo_copy / "results/ci/.resume/teacher_ddpm/state.pt").exists()  # cleared when done

    out = repo_copy / "results/ci/models/teacher_ddpm/model.safetensors"
    state = repo_copy / "results/ci/.resume/teacher_ddpm/state.pt"
    signal_when_ready(train_cmd(out), repo_copy, state.exists, env=env)
    assert not out.exists() and state.exists()
    resumed = run_cmd(train_cmd(out), cwd=repo_copy, env=env)
    assert "resuming from step" in resumed.stderr
    a, _ = load_tensors(ref)
    b, _ = load_tensors(out)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    log = (out.parent / "train_log.jsonl").read_text().splitlines()
    steps = [int(line.split('"step": ')[1].split(",")[0]) for line in log]
    assert steps == sorted(steps) and steps[-1] == 200


@pytest.mark.slow
def test_sigterm_saves_state_and_exits(repo_copy):
    run_cmd(["trilemma", "fetch-data", "--profile", "ci", "--dataset", "gauss25",
             "--out", "results/ci/data/gauss25.safetensors"], cwd=repo_copy)
    out = repo_copy / "m/model.safetensors"
    log = repo_copy / "results/ci/.resume/teacher_ddpm/log.jsonl"
    rc, err = signal_when_ready(train_cmd(out), repo_copy, lambda: log.exists() and log.stat().st_size > 0,
                                sig=signal.SIGTERM)
    assert rc == 128 + signal.SIGTERM
    assert "state saved" in err and (log.parent / "state.pt").exists()
