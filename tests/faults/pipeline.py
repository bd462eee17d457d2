"""Helpers of the whole-pipeline fault tests (issue 20): kill a DAG run's whole process group at
seeded moments, recover, and check every artifact a run left behind."""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from conftest import TIMING_FIELDS, run_cmd, tool_env

TIMING = TIMING_FIELDS   # the fields a re-run may change (tests/conftest.py)


def built_copy(built: Path, tmp_path: Path) -> Path:
    """A copy of the session's ci build (results and Snakemake's records) to damage or re-run."""
    dst = tmp_path / "repo"
    shutil.copytree(built, dst, symlinks=True)
    return dst


def snakemake_cmd(*targets: str, profile: str = "ci") -> list[str]:
    """The command re-run after a kill: the plain one plus ``--rerun-incomplete`` (Snakemake marks the
    outputs of the jobs that were running as incomplete, and refuses to go on without the flag)."""
    return ["snakemake", *targets, "--cores", "2", "--rerun-incomplete", "--config", f"profile={profile}"]


def snakemake_unlock(profile: str = "ci") -> list[str]:
    """A SIGKILLed Snakemake leaves its lock (.snakemake/locks): the next run refuses until unlocked."""
    return ["snakemake", "--unlock", "--config", f"profile={profile}"]


@dataclass
class KillLog:
    """What a run under kills did: at how many of the run's artifacts each kill came, and what it hit."""
    at: list[int] = field(default_factory=list)              # artifacts on disk when each kill came
    running_jobs: list[int] = field(default_factory=list)    # processes in the group besides the tool
    total: int = 0

    def summary(self) -> str:
        return (f"{len(self.at)} kills, at {', '.join(map(str, self.at))} of {self.total} artifacts; "
                f"{sum(n > 0 for n in self.running_jobs)} hit running jobs")


def artifact_count(results: Path) -> int:
    """The run's progress: the artifacts under ``results`` (logs, resume state and DVC's per-job code files aside)."""
    if not results.is_dir():
        return 0
    return sum(1 for p in results.rglob("*") if p.is_file() and not p.name.startswith(".")
               and not {"logs", ".resume", "code"} & set(p.relative_to(results).parts))


def group_members(pgid: int) -> int:
    """How many live processes are in process group ``pgid`` (from /proc)."""
    n = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            n += 1
    return n


def run_with_kills(cmd: list[str], cwd: Path, kills: int, seed: int, results: Path, total: int,
                   recover: list[list[str]] = (), env: dict | None = None, timeout: float = 1800,
                   max_pause: float = 2.0) -> KillLog:
    """Run ``cmd`` (in its own session) to completion while SIGKILLing its whole process group at
    ``kills`` moments spread over the run: seeded draws of U(0, 0.9 ``total``) artifacts written under
    ``results`` (``total``: what a whole run writes; at most ``total`` - 1.5, so one artifact at least is
    still to come), each followed by a seeded pause of up to ``max_pause`` s, so kills land in every stage
    of the DAG and inside jobs (a short run wants a short pause: its last job may end within 2 s).  After each kill the ``recover`` commands
    run and ``cmd`` starts again.  Fails if a run ends before its kill or if a process of a killed
    group survives."""
    rng = random.Random(seed)
    log = KillLog(total=total)
    for i, point in enumerate(sorted(rng.uniform(0, min(0.9 * total, total - 1.5)) for _ in range(kills))):
        out = Path(cwd).parent / f"killed-run-{i}.log"
        with open(out, "w") as fh:
            proc = subprocess.Popen(cmd, cwd=cwd, env=tool_env(env), stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        deadline = time.time() + timeout
        while artifact_count(results) < point and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        try:
            proc.wait(timeout=rng.uniform(0.1, max(0.1, max_pause)))
            raise AssertionError(f"{cmd[:2]} ended ({proc.returncode}) before kill {i}:\n{out.read_text()[-3000:]}")
        except subprocess.TimeoutExpired:
            pass
        log.running_jobs.append(group_members(proc.pid) - 1)
        log.at.append(artifact_count(results))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 30
        while group_members(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert group_members(proc.pid) == 0, "a process of the killed run survived"
        for rec in recover:
            run_cmd(rec, cwd=cwd, env=env)
    run_cmd(cmd, cwd=cwd, env=env, timeout=timeout)
    return log


def integrity_problems(root: Path) -> list[str]:
    """Every artifact under ``root`` loads as what its name says (safetensors with their digest,
    JSON, JSONL, CSV, PNG, Markdown), and no writer's temporary file is left: the problems found."""
    from PIL import Image

    from trilemma.artifacts import ArtifactError, load_tensors
    readers = {
        ".safetensors": load_tensors,
        ".json": lambda p: json.loads(p.read_text()),
        ".jsonl": lambda p: [json.loads(line) for line in p.read_text().splitlines()],
        ".csv": lambda p: pd.read_csv(p).shape[0] or _raise("no rows"),
        ".png": lambda p: Image.open(p).verify(),
        ".md": lambda p: p.read_text().strip() or _raise("empty"),
    }
    problems, checked = [], 0
    for path in sorted(root.rglob("*")):
        if not path.is_file() or "logs" in path.relative_to(root).parts[:1]:
            continue
        if path.name.startswith(".") and path.name.endswith(".tmp"):
            problems.append(f"{path}: a writer's temporary file left behind")
            continue
        reader = readers.get(path.suffix)
        if reader is None:
            continue
        try:
            reader(path)
            checked += 1
        except (ArtifactError, ValueError, OSError, SyntaxError) as exc:
            problems.append(f"{path}: {exc}")
    if checked == 0:
        problems.append(f"{root}: no artifact found")
    return problems


def _raise(msg: str):
    raise ValueError(msg)


def without_timing(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in df.columns if c in TIMING]).reset_index(drop=True)


def same_metrics(a: Path, b: Path) -> None:
    """Two metrics.csv files are equal up to the timing columns."""
    pd.testing.assert_frame_equal(without_timing(pd.read_csv(a)), without_timing(pd.read_csv(b)))


def same_bank_metrics(a: Path, b: Path) -> None:
    """Two per-bank metrics JSON files are equal up to the timing fields."""
    x, y = (json.loads(p.read_text()) for p in (a, b))
    assert {k: v for k, v in x.items() if k not in TIMING} == {k: v for k, v in y.items() if k not in TIMING}, (a, b)
