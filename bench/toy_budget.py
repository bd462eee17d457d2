"""Benchmark: what each method family adds to ``make run`` on this machine, against the issues' budgets.
Not a test: it prints one table measured in one run.

    python bench/toy_budget.py [--profile toy] [--cores 2] [--families skeleton,pd,ddgan,guidance]

It copies the repository (tracked and untracked-not-ignored files; no results, no .snakemake) to a
temporary directory, builds the data, then runs ``snakemake --cores N`` once per family with that
family's metric files as the targets, so each run builds the family's models, sample banks and
evaluations and nothing else, and finally collect + report over everything.  Wall time is the
family's share of ``make run`` if it ran alone (in the full run the families interleave on the
cores, so the sum is an upper bound); CPU time is user + system of every process it started. The skeleton's budget
(issue 2: its stages of `make run`) is compared with data + skeleton + collect/report.

Families (by a bank's model and spec): skeleton = the DDPM teacher and its DDPM/DDIM/PF-ODE banks
(issue 2), pd = the distillation teacher and the
chain of rounds with their DDIM baselines (issue 3), ddgan = DDGAN's T ablation and seeds and the
GAN baselines (issue 4), guidance = the CFG teacher, the classifier and its banks (classifier guidance
of teacher_pd), guided distillation (issue 5), oracle = the exact denoiser's banks (issue 24).
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from trilemma import config, dag

REPO = Path(__file__).resolve().parents[1]
FAMILIES = {  # name: (regex on a bank's id <model>/<spec>, budget in seconds from the issue)
    "skeleton": (r"teacher_ddpm/", 360),
    "pd": (r"teacher_pd/(?!cg-)|pd_s\d+/", 240),
    "ddgan": (r"(ddgan_t\d+|gan|wgan_gp)_seed\d+/", 180),
    "guidance": (r"teacher_cfg/|guided_(w|s\d+)/|teacher_pd/cg-", 180),   # cg: of teacher_pd (issue 24)
    "oracle": (r"oracle/", 60),   # the exact denoiser's banks (issue 24)
}


def copy_tree(dst: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.split("\0")
    for rel in filter(None, listed):
        if (REPO / rel).is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dst / rel)
    return dst


def family_targets(cfg: dict) -> dict[str, list[str]]:
    targets: dict[str, list[str]] = {name: [] for name in FAMILIES}
    for job in dag.jobs(cfg):
        if job.stage != "evaluate":
            continue
        bank = "/".join(Path(job.outs[0]).with_suffix("").parts[-2:])
        for name, (pattern, _) in FAMILIES.items():
            if re.match(pattern, bank):
                targets[name].append(job.outs[0])
    return targets


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``cmd`` and every process it waited for."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd[:6])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="toy")
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated, in this order")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    args = ap.parse_args()
    cfg = config.load(args.profile)
    targets = family_targets(cfg)
    work = Path(tempfile.mkdtemp(prefix="toy_budget-"))
    repo = copy_tree(work / "repo")
    def snakemake(*targets):  # targets before --config, which takes every word after it
        return ["snakemake", "--cores", str(args.cores), *targets, "--config", f"profile={args.profile}"]
    load = os.getloadavg()[0]
    fetch = dag.jobs(cfg)[0]
    assert fetch.stage == "fetch_data"
    rows = [("data", "-", *timed(snakemake(*fetch.outs), repo), None)]
    families = args.families.split(",")
    for name in families:
        if targets[name]:
            rows.append((name, len(targets[name]), *timed(snakemake(*targets[name]), repo), FAMILIES[name][1]))
    if set(families) >= {name for name, t in targets.items() if t}:  # everything built: only these two are left
        rows.append(("collect + report", "-", *timed(snakemake("all"), repo), None))
    if "skeleton" in families and rows[-1][0] == "collect + report":
        parts = [r for r in rows if r[0] in ("data", "skeleton", "collect + report")]
        rows.append(("skeleton + data + report", "-", sum(r[2] for r in parts), sum(r[3] for r in parts),
                     FAMILIES["skeleton"][1]))
    print(f"profile {args.profile}, snakemake --cores {args.cores}, {os.cpu_count()} CPUs, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load average before: {load:.2f}")
    print("| part | banks | wall s | CPU s | budget s | wall / budget |\n|---|---|---|---|---|---|")
    for name, banks, wall, cpu, budget in rows:
        ratio = f"{wall / budget:.2f}" if budget else "-"
        print(f"| {name} | {banks} | {wall:.0f} | {cpu:.0f} | {budget or '-'} | {ratio} |")
    if args.keep:
        print(f"kept: {repo}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
