"""Benchmark: what a ``trilemma`` job pays before its work starts, against bare ``import torch``
(issue 21's start-up targets).  Not a test: it prints one table measured side by side in one run.

    python bench/startup.py [--repeats 15]

Rows, each a fresh process, interleaved in a rotating order, ``--repeats`` times, median and quartiles.
CPU: user + system of the process (``RUSAGE_CHILDREN``); for the two ``fetch-data`` rows, the job's
own timing line (``trilemma/jobclock.py``: start-up + compute, from the process's start, or in a
worker from its client's start with the client's CPU added), since a worker is the server's child:

- ``python -c "import torch"``: the floor a torch job cannot go under on its own;
- ``trilemma check-config --profile toy``: the DAG's own command, which must not import torch (<= 1 s);
- ``trilemma fetch-data`` (the ci profile's 2-D data, a job that imports torch and little else of
  ours) run on its own (``TRILEMMA_NO_JOBSERVER=1``): target <= 1.3x the floor;
- the same through a job server (``trilemma/jobserver.py``, as ``snakemake`` starts one for local
  runs): the client's process plus the worker's CPU, which the worker's timing line reports.  The
  server's own import is paid once per run (printed below the table).
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from trilemma import jobclock, jobserver  # noqa: E402

TRILEMMA = str(Path(sys.executable).parent / "trilemma")


def run(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """(wall s, CPU s of the process tree, stderr) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stderr


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp()) / "gauss25.safetensors"
    fetch = [TRILEMMA, "fetch-data", "--profile", "ci", "--dataset", "gauss25", "--out", str(out)]
    base = {**os.environ, **jobserver.ONE_THREAD}
    base.pop(jobserver.ENV, None)
    alone = {**base, jobserver.DISABLE_ENV: "1"}
    server = jobserver.start()   # with a one-thread job's environment, as the rows' env
    served = {**base, jobserver.ENV: os.environ[jobserver.ENV]}
    rows = {"python -c 'import torch'": ([sys.executable, "-c", "import torch"], alone),
            "trilemma check-config --profile toy": ([TRILEMMA, "check-config", "--profile", "toy"], alone),
            "trilemma fetch-data, on its own": (fetch, alone),
            "trilemma fetch-data, through a job server": (fetch, served)}
    names = list(rows)
    found: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    try:
        for r in range(args.repeats):
            for k in range(len(names)):
                name = names[(r + k) % len(names)]
                cmd, env = rows[name]
                wall, cpu, err = run(cmd, env)
                if "fetch-data" in name:   # a worker is the server's child, not ours: both rows by the timing line
                    timing = jobclock.parse(err)
                    assert timing and timing["runner"] == ("jobserver" if "server" in name else "process"), err
                    cpu = timing["startup_cpu_s"] + timing["compute_cpu_s"]
                found[name].append((wall, cpu))
    finally:
        jobserver.stop(server)
    floor = statistics.median(c for _, c in found[names[0]])
    model = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"{model}, {os.cpu_count()} CPUs; median [quartiles] of {args.repeats} interleaved runs each\n")
    print("| command | wall s | CPU s | CPU / import torch |\n|---|---|---|---|")
    for name in names:
        walls, cpus = [w for w, _ in found[name]], [c for _, c in found[name]]
        q = statistics.quantiles(cpus, n=4)
        print(f"| {name} | {statistics.median(walls):.2f} | {statistics.median(cpus):.2f} [{q[0]:.2f}, {q[2]:.2f}] "
              f"| {statistics.median(cpus) / floor:.2f} |")
    print("\n(the server's own start, paid once per run: its import of torch and the rest, about the floor's CPU)")


if __name__ == "__main__":
    main()
