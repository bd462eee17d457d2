import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def gaussian_eps(schedule, mu: float, s: float):
    """The exact eps-prediction for data x0 ~ N(mu, s^2 I): eps*(x_t) = sigma (x_t - alpha mu) / (alpha^2 s^2 + sigma^2)."""
    def eps(x, t):
        alpha, sigma = schedule.alpha_sigma(t.double())
        alpha, sigma = alpha.float()[:, None], sigma.float()[:, None]
        return sigma * (x - alpha * mu) / (alpha ** 2 * s ** 2 + sigma ** 2)
    return eps


class FnNet(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x, t):
        return self.fn(x, t)


def copy_repo(dst: Path) -> Path:
    """Copy the repository's tracked and untracked-not-ignored files (no .venv, no results) to ``dst``."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True, text=True).stdout.split()
    for f in files:
        src = REPO / f
        if src.is_file():
            (dst / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / f)
    return dst


@pytest.fixture
def repo_copy(tmp_path):
    """A copy of the repository's tracked and untracked-not-ignored files (no .venv, no results)."""
    return copy_repo(tmp_path / "repo")


def run_cmd(args, cwd, check=True, timeout=900, env=None):
    full_env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1",
                **(env or {})}
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def signal_when_ready(cmd, cwd, ready, sig=signal.SIGKILL, env=None, timeout=120):
    """Start ``cmd``, wait until ``ready()`` is true (e.g. a resume checkpoint exists), send ``sig``
    and wait for the process to end: how the tests kill a job mid-way.  Returns (returncode, stderr).
    Fails when the job ends on its own first (make the run longer then)."""
    full_env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", **(env or {})}
    proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.time() + timeout
    while not ready() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, f"{cmd[:2]} finished before it could be signalled: make the run longer"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err
