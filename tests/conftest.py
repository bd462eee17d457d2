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

# One thread per process for the whole session, subprocesses included: the Slurm run works in the
# background (``slurm_ci_run``) and DAG runs start two jobs at once, so on a 2-core CI machine several
# torch processes share the cores, and OpenMP's spinning threads would slow each of them many times over.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


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


# The fields of a bank's metrics (and metrics.csv's columns) that a re-run may change: where and how fast it ran,
# and a distilled model's training wall time (a resumed job sums its runs).  Every comparison of two runs skips them.
TIMING_FIELDS = frozenset({"time_per_100_s", "timing", "device", "train_wall_s", "train_cumulative_wall_s",
                           "train_device"})


def copy_repo(dst: Path) -> Path:
    """Copy the repository's tracked and untracked-not-ignored files (no .venv, no results) to ``dst``.
    Untracked files under ``results/`` stay behind: a profile run in the checkout (``make run
    PROFILE=ci_images``) would otherwise make the copy's Snakemake find its outputs built."""
    def listed(*flags):
        return subprocess.run(["git", "ls-files", *flags], cwd=REPO, check=True, capture_output=True,
                              text=True).stdout.split()
    files = listed("--cached") + [f for f in listed("--others", "--exclude-standard") if not f.startswith("results/")]
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


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """The session's uninterrupted Snakemake build of the ``ci`` profile (tests/test_e2e.py checks it;
    tests/faults compares interrupted and damaged runs with it).  Tests that change it restore it."""
    dst = copy_repo(tmp_path_factory.mktemp("e2e") / "repo")
    run_cmd(["snakemake", "--cores", "2", "--config", "profile=ci"], cwd=dst)
    return dst


def tool_env(extra=None) -> dict:
    """The environment of every command a test starts: this venv's tools first on PATH, no DVC analytics."""
    return {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "DVC_NO_ANALYTICS": "1", **(extra or {})}


def run_cmd(args, cwd, check=True, timeout=900, env=None):
    full_env = tool_env(env)
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def signal_when_ready(cmd, cwd, ready, sig=signal.SIGKILL, env=None, timeout=120, group=False):
    """Start ``cmd``, wait until ``ready()`` is true (e.g. a resume checkpoint exists), send ``sig``
    and wait for the process to end: how the tests kill a job mid-way.  Returns (returncode, stderr).
    ``group``: start ``cmd`` in a new session and signal its whole process group.
    Fails when the job ends on its own first (make the run longer then)."""
    full_env = tool_env(env)
    proc = subprocess.Popen(cmd, cwd=cwd, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=group)
    deadline = time.time() + timeout
    while not ready() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proc.poll() is None, f"{cmd[:2]} finished before it could be signalled: make the run longer"
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


# ----------------------------------------------------------------------------- torchrun
needs_unshare = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                   reason="runs torchrun inside private network and PID namespaces (needs root and unshare)")


def private_namespace(cmd) -> list[str]:
    """``cmd`` in private network and PID namespaces (``needs_unshare``), for commands that start
    torchrun: its rendezvous and gloo open sockets, kept on a private loopback-only network.  The
    PID namespace's init is ``cmd`` (``--kill-child``: also when only unshare dies): torchrun starts
    every worker in a session of its own, so killing the launch's process group leaves the workers
    running, and they would go on (training, say) and publish; when the namespace's init dies the
    kernel kills everything in it, as a Slurm job's cgroup does."""
    return ["unshare", "--net", "--pid", "--kill-child", "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *cmd]


def torchrun_cmd(argv, *torchrun_args) -> list[str]:
    """``python <argv>`` as two gloo ranks under torchrun, in a private namespace (``private_namespace``)."""
    return private_namespace([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                              *torchrun_args, *argv])


# ----------------------------------------------------------------------------- Slurm, in the background
SLURM_TOOLS = ("unshare", "munged", "slurmctld", "slurmd", "sbatch", "squeue")
SLURM_TEST = "test_slurm_executor_reproduces_the_local_results"


def slurm_usable() -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) is not None for t in SLURM_TOOLS)


def slurm_ci_targets() -> list[str]:
    """What the Slurm test builds: the metrics of the DDPM teacher's banks and of the distilled
    students, i.e. data -> teacher -> banks -> evaluations, and the distillation teacher -> rounds
    chain (one grouped Slurm job) -> the students' banks.  The whole ci DAG through Slurm takes
    7 min here alone (13-15 min beside other work), most of it sbatch/squeue latency and each job's
    own Snakemake start, so CI runs this slice; README "On a cluster" gives the command for a whole
    profile."""
    from trilemma import config, dag
    cfg = config.load("ci", root=REPO)
    return [job.outs[0] for job in dag.jobs(cfg) if job.stage == "evaluate"
            and Path(job.outs[0]).parent.name in (dag.TEACHER, *map(dag.student, dag.student_steps(cfg)))]


def slurm_ci_command(repo: Path) -> list[str]:
    """The ci slice through the one-node Slurm (tests/slurm/onenode.sh) and Snakemake's Slurm executor.
    The jobs take seconds, so sbatch and status polling dominate (the plugin backs off by 10 s per idle
    check): each model chain (a teacher and its distillation rounds) runs as one Slurm job, the grouping
    README's "On a cluster" suggests for small profiles. Banks stay one job per rule: grouped too, the
    banks of one chain would merge into a single job asking for one CPU per bank."""
    return [str(repo / "tests/slurm/onenode.sh"), str(repo / ".cluster"),
            "snakemake", "--profile", "workflow/profiles/slurm", "--config", "profile=ci",
            "--groups", "train=models", "distill=models",
            "--slurm-status-command", "squeue", "--slurm-no-account", "--latency-wait", "5",
            "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
            "--max-status-checks-per-second", "2", *slurm_ci_targets()]


class BackgroundRun:
    """A command started at session start in its own process group and awaited by a test."""

    def __init__(self, cmd, cwd: Path, log: Path):
        self.cwd, self.log = cwd, log
        with open(log, "w") as fh:
            self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=tool_env(),
                                         start_new_session=True)

    def wait(self, timeout: float) -> str:
        """Wait for the command; its output, or an AssertionError with the output's tail on failure."""
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"still running after {timeout} s:\n{self.log.read_text()[-4000:]}")
        out = self.log.read_text()
        if rc != 0:
            raise AssertionError(f"failed ({rc}):\n{out[-6000:]}")
        return out

    def stop(self):
        if self.proc.poll() is None:  # SIGTERM to the group: snakemake cancels its jobs, onenode.sh stops Slurm
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="session", autouse=True)
def slurm_ci_run(request, tmp_path_factory):
    """The Slurm run of the ci slice (``slurm_ci_targets``), started when the session starts (if the Slurm test is selected
    and Slurm can run here): it spends its time waiting on sbatch and squeue round trips rather than
    computing, so it overlaps the rest of the suite instead of adding its minutes to it.
    ``None`` when not started."""
    if not slurm_usable() or not any(item.name == SLURM_TEST for item in request.session.items):
        yield None
        return
    repo = copy_repo(tmp_path_factory.mktemp("slurm") / "repo")
    run = BackgroundRun(slurm_ci_command(repo), repo, repo.parent / "slurm-run.log")
    yield run
    run.stop()
