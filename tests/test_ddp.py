"""Data parallelism in the one training loop: 2 gloo ranks on CPU under torchrun follow the 1-rank
run with the same global batch (parameters within float tolerance after the same samples seen)."""
import os
import shutil
import sys

import pytest
import torch

from conftest import run_cmd
from trilemma.artifacts import load_tensors

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                       reason="runs torchrun inside a private network namespace (needs root and unshare)"),
]


def train_cmd(out):
    return ["-m", "trilemma", "train", "--profile", "ci", "--model", "teacher_ddpm",
            "--data", "results/ci/data/gauss25.safetensors", "--out", out, "--no-progress"]


def test_two_gloo_ranks_match_one_rank(repo_copy):
    env = {"OMP_NUM_THREADS": "1"}
    run_cmd(["trilemma", "fetch-data", "--profile", "ci", "--dataset", "gauss25",
             "--out", "results/ci/data/gauss25.safetensors"], cwd=repo_copy)
    run_cmd([sys.executable, *train_cmd("one/model.safetensors")], cwd=repo_copy, env=env)
    # torchrun's rendezvous and gloo open sockets: keep them on a private loopback-only network.
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    proc = run_cmd(["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh",
                    *torchrun, *train_cmd("two/model.safetensors")], cwd=repo_copy, env=env)
    one, _ = load_tensors(repo_copy / "one/model.safetensors")
    two, _ = load_tensors(repo_copy / "two/model.safetensors")
    assert one.keys() == two.keys()
    for k in one:
        assert torch.allclose(one[k], two[k], rtol=1e-4, atol=1e-5), (k, (one[k] - two[k]).abs().max())
    assert not torch.equal(one["inp.weight"], torch.zeros_like(one["inp.weight"]))
    log = (repo_copy / "two/train_log.jsonl").read_text().splitlines()
    assert log and '"samples_seen": 40000' in log[-1]  # the global batch, not 2x
    assert "wrote two/model.safetensors" in proc.stdout and proc.stdout.count("wrote two/") == 1
