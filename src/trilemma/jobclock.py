"""Where a job's time goes: its start-up (interpreter + imports) and its compute, wall and CPU.

``trilemma <verb>`` prints one line at its end, on stderr, so that Snakemake's per-job log holds it:

    trilemma timing: verb=sample startup_wall_s=1.52 startup_cpu_s=1.49 compute_wall_s=3.10 compute_cpu_s=3.05 runner=process

Start-up runs from the process's start (``/proc/self/stat`` on Linux; elsewhere from this module's
import) to the verb's ``run``: the interpreter, ``import torch`` and every module the verb imports.
CPU is user + system of all the process's threads (``time.process_time``); child processes (torchrun
ranks) are not counted.  A job run by a job server's worker (``trilemma/jobserver.py``) counts from
its client's start, and the client's CPU is added to the worker's start-up.  ``bench/toy_budget.py``
reads these lines.  Torch-free.
"""
from __future__ import annotations

import os
import re
import sys
import time

LINE = "trilemma timing:"
_PATTERN = re.compile(re.escape(LINE) + r"\s+(.*)$")


def seconds_since_process_start() -> float:
    """Wall seconds since this process started (Linux: its start tick vs the boot-time clock)."""
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])   # field 22, after the comm field
        return max(time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


_IMPORTED = time.perf_counter() - seconds_since_process_start()   # perf_counter at process start
_CPU_BEFORE = 0.0   # CPU seconds of the job spent before this process (a job server's client)
_RUNNER = "process"   # "jobserver" in a job server's worker


def adopt_origin(boottime: float, cpu: float) -> None:
    """In a job server's worker (``trilemma/jobserver.py``): the job started when its client process
    did (``boottime``, CLOCK_BOOTTIME) and had used ``cpu`` CPU seconds before the fork."""
    global _IMPORTED, _CPU_BEFORE, _RUNNER
    _IMPORTED = time.perf_counter() - max(time.clock_gettime(time.CLOCK_BOOTTIME) - boottime, 0.0)
    _CPU_BEFORE = float(cpu)
    _RUNNER = "jobserver"


class JobClock:
    """``started()`` when the verb's run begins, ``line()`` when it has ended."""

    def __init__(self, verb: str):
        self.verb = verb
        self.t_run = self.cpu_run = None

    def started(self) -> None:
        self.t_run, self.cpu_run = time.perf_counter(), time.process_time()

    def line(self) -> str:
        now, cpu = time.perf_counter(), time.process_time()
        t_run = self.t_run if self.t_run is not None else now
        cpu_run = self.cpu_run if self.cpu_run is not None else cpu
        fields = {"startup_wall_s": t_run - _IMPORTED, "startup_cpu_s": cpu_run + _CPU_BEFORE,
                  "compute_wall_s": now - t_run, "compute_cpu_s": cpu - cpu_run}
        return (f"{LINE} verb={self.verb} " + " ".join(f"{k}={v:.3f}" for k, v in fields.items())
                + f" runner={_RUNNER}")

    def report(self) -> None:
        print(self.line(), file=sys.stderr, flush=True)


def parse(text: str) -> dict | None:
    """The last timing line of a log as {verb, startup_wall_s, ...}, or None."""
    found = None
    for line in text.splitlines():
        m = _PATTERN.search(line)
        if m:
            found = dict(kv.split("=", 1) for kv in m.group(1).split())
    if found is None:
        return None
    return {k: (v if k in ("verb", "runner") else float(v)) for k, v in found.items()}
