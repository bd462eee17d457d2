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

from conftest import run_cmd, tool_env

TIMING = {"time_per_100_s", "timing", "device"}   # the fields a re-run may change


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
    """What a run under kills did: the moments (seconds after each start) and what each kill hit."""
    delays: list[float] = field(default_factory=list)
    running_jobs: list[int] = field(default_factory=list)   # processes in the group besides the tool

    def summary(self) -> str:
        return (f"{len(self.delays)} kills at {', '.join(f'{d:.1f}' for d in self.delays)} s after each start; "
                f"{sum(n > 0 for n in self.running_jobs)} hit running jobs")


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


def run_with_kills(cmd: list[str], cwd: Path, kills: int, seed: int, max_delay: float,
                   recover: list[list[str]] = (), env: dict | None = None, timeout: float = 1800) -> KillLog:
    """Start ``cmd`` in its own session, SIGKILL its whole process group after a delay drawn from
    U(0.5, ``max_delay``) s (seeded), run the ``recover`` commands, and repeat ``kills`` times; then
    run ``cmd`` to completion.  Fails if a run ends before its kill (make ``max_delay`` smaller) or if
    a process of a killed group survives."""
    rng, log = random.Random(seed), KillLog()
    for i in range(kills):
        delay = rng.uniform(0.5, max_delay)
        out = Path(cwd).parent / f"killed-run-{i}.log"
        with open(out, "w") as fh:
            proc = subprocess.Popen(cmd, cwd=cwd, env=tool_env(env), stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        try:
            proc.wait(timeout=delay)
            raise AssertionError(f"{cmd[:2]} ended ({proc.returncode}) before kill {i} at {delay:.1f} s:\n"
                                 f"{out.read_text()[-3000:]}")
        except subprocess.TimeoutExpired:
            pass
        log.running_jobs.append(group_members(proc.pid) - 1)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.time() + 30
        while group_members(proc.pid) and time.time() < deadline:
            time.sleep(0.1)
        assert group_members(proc.pid) == 0, "a process of the killed run survived"
        log.delays.append(delay)
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
