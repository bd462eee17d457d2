"""The job server (``trilemma/jobserver.py``, issue 21): a worker forked from a process that has
imported torch once is the client's job in everything a job can see, and dies with its client.

Most tests run the stand-in target ``tests/jobserver_target.py:run`` through a real server and a real
client process; one runs a real verb.  The whole ci DAG through the server (the session's ``built``
fixture) is compared with DVC's build, which runs every verb without it (tests/test_e2e.py)."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import BIN, REPO
from trilemma import jobclock, jobserver

TESTS = str(Path(__file__).resolve().parent)
CLIENT = ("import sys\nfrom trilemma import jobserver\ncode = jobserver.delegate(sys.argv[1:])\n"
          "print('LOCAL' if code is None else '', end='')\nsys.exit(0 if code is None else code)\n")


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([TESTS, str(REPO / "src")]))
    monkeypatch.delenv(jobserver.DISABLE_ENV, raising=False)
    proc = jobserver.start(target="jobserver_target:run", env={})   # the clients' own environment
    assert proc is not None and os.environ[jobserver.ENV] == proc.socket_path
    yield proc
    jobserver.stop(proc)
    assert not os.path.exists(os.path.dirname(proc.socket_path))


def client(*argv, cwd=None, env=None, wait=True):
    cmd = [sys.executable, "-c", CLIENT, *argv]
    full = {**os.environ, **(env or {})}
    if wait:
        return subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True, timeout=120)
    return subprocess.Popen(cmd, cwd=cwd, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path: Path, timeout=60) -> int:
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return int(path.read_text())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_worker_is_its_clients_job(server, tmp_path):
    proc = client("echo", "a b", "--flag", cwd=tmp_path, env={"JS_PROBE": "client only"})
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["ppid"] == server.pid   # forked by the server, not started by the client
    assert seen["argv"] == ["echo", "a b", "--flag"] and seen["cwd"] == str(tmp_path)
    assert seen["probe"] == "client only" and seen["sys_path"][1] == TESTS
    assert proc.stderr == "to stderr\n"   # the worker wrote into the client's own stderr


def test_the_interpreter_is_compared_by_its_real_path(server):
    """Snakemake's script starts ``bin/python``, trilemma's ``bin/python3`` after a reinstall (found in a
    toy run whose server served none of its 286 jobs): the same interpreter, so the job is served."""
    names = [n for n in ("python", "python3", f"python3.{sys.version_info[1]}") if (BIN / n).exists()]
    other = next(n for n in names if n != Path(sys.executable).name)
    proc = subprocess.run([str(BIN / other), "-c", CLIENT, "echo"], env=os.environ, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout)["ppid"] == server.pid, proc.stdout + proc.stderr


def test_exit_status_and_errors_come_back(server):
    assert client("exit", "3").returncode == 3
    raised = client("raise")
    assert raised.returncode == 1 and "RuntimeError: boom" in raised.stderr
    assert client("selfkill").returncode == -signal.SIGKILL   # the client dies of the worker's signal


def test_sigterm_reaches_the_worker(server, tmp_path):
    proc = client("sleep", str(tmp_path / "pid"), wait=False)
    pid = wait_for(tmp_path / "pid")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM and out == f"got signal {signal.SIGTERM}\n"
    assert not alive(pid)


def test_a_killed_client_takes_its_worker_with_it(server, tmp_path):
    """What tests/faults does to Snakemake's process group: nothing may go on publishing after it."""
    proc = client("sleep", str(tmp_path / "pid"), wait=False)
    pid = wait_for(tmp_path / "pid")
    proc.kill()
    proc.wait()
    deadline = time.time() + 10
    while alive(pid) and time.time() < deadline:
        time.sleep(0.02)
    assert not alive(pid)
    assert client("exit", "0").returncode == 0   # the server goes on serving


def test_another_startup_environment_or_no_server_runs_the_job_itself(server):
    assert client("exit", "5", env={"PYTHONHASHSEED": "123"}).stdout == "LOCAL"
    assert client("exit", "5", env={jobserver.DISABLE_ENV: "1"}).stdout == "LOCAL"
    assert client("exit", "5", env={jobserver.ENV: ""}).stdout == "LOCAL"
    assert client("exit", "5", env={"OMP_NUM_THREADS": "2"}).stdout == "LOCAL"   # BLAS pools are sized at import


PARENT = """
import os, subprocess, sys, time
path = sys.argv[1]
srv = subprocess.Popen([sys.executable, "-m", "trilemma.jobserver", "--socket", path, "--parent", str(os.getpid())])
while not os.path.exists(path):
    time.sleep(0.02)
print(srv.pid, flush=True)
"""


def test_the_server_ends_with_its_parent(tmp_path):
    """A Snakemake killed before ``onerror`` runs leaves no server behind."""
    path = tmp_path / "socket"
    parent = subprocess.run([sys.executable, "-c", PARENT, str(path)], capture_output=True, text=True, timeout=120)
    pid = int(parent.stdout)   # the parent has exited; its server was serving then
    deadline = time.time() + 10
    while alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive(pid) and not path.exists()


def test_a_real_verb_through_the_server_prints_what_it_prints_alone(monkeypatch):
    monkeypatch.delenv(jobserver.DISABLE_ENV, raising=False)
    proc = jobserver.start()
    try:
        served = subprocess.run([str(BIN / "trilemma"), "check-config", "--profile", "ci"], cwd=REPO,
                                capture_output=True, text=True, timeout=120, env={**os.environ, **jobserver.ONE_THREAD})
    finally:
        jobserver.stop(proc)
    alone = subprocess.run([str(BIN / "trilemma"), "check-config", "--profile", "ci"], cwd=REPO,
                           capture_output=True, text=True, timeout=120)
    assert served.returncode == alone.returncode == 0 and served.stdout == alone.stdout
    via, direct = jobclock.parse(served.stderr), jobclock.parse(alone.stderr)
    assert via["runner"] == "jobserver" and direct["runner"] == "process"
    assert via["startup_wall_s"] > 0 and via["startup_cpu_s"] > 0
