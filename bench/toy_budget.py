"""Benchmark: what each method family adds to ``make run`` on this machine, against the issues' budgets.
Not a test: it prints one table measured in one run.

    python bench/toy_budget.py [--profile toy] [--cores 2] [--families skeleton,pd,ddgan,guidance]
    python bench/toy_budget.py --from-logs [ROOT] [--profile toy]   # only read a finished run's job logs

It copies the repository (tracked and untracked-not-ignored files; no results, no .snakemake) to a
temporary directory, builds the data, then runs ``snakemake --cores N`` once per family with that
family's metric files as the targets, so each run builds the family's models, sample banks and
evaluations and nothing else, and finally collect + report over everything.  Wall time is the
family's share of ``make run`` if it ran alone (in the full run the families interleave on the
cores, so the sum is an upper bound); CPU time is user + system of every process it started. The skeleton's budget
(issue 2: its stages of `make run`) is compared with data + skeleton + collect/report.

Where the CPU time goes (issue 21): every ``trilemma`` job ends its Snakemake log with a
``trilemma timing:`` line (``trilemma/jobclock.py``: its start-up, i.e. the interpreter and imports,
and its compute, wall and CPU).  Per family the table splits the measured CPU into the jobs' start-up,
their compute, and the rest, which is Snakemake's own process and the jobs' shells (``bash``, ``tee``);
then it lists the family's 10 slowest jobs.  ``--from-logs`` reads the logs of the tree's last run
(``results/<profile>/logs``; e.g. after ``make run``), where the rest is not measured.

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

from trilemma import config, dag, jobclock

REPO = Path(__file__).resolve().parents[1]
FAMILIES = {  # name: (regex on a bank's id <model>/<spec>, budget in seconds from the issue)
    "skeleton": (r"teacher_ddpm/", 360),
    "pd": (r"teacher_pd/(?!cg-)|pd_s\d+/", 240),
    "ddgan": (r"(ddgan_t\d+|gan|wgan_gp)_seed\d+/", 180),
    "guidance": (r"teacher_cfg/|guided_(w|s\d+)/|teacher_pd/cg-|classifier_cg/", 180),   # cg: of teacher_pd (issue 24)
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


def family_of(model_spec: str) -> str:
    """The family of a bank id ``<model>/<spec>`` or a model ``<model>/`` (its training job); "other"."""
    return next((name for name, (pattern, _) in FAMILIES.items() if re.match(pattern, model_spec)), "other")


def job_timings(repo: Path, profile: str) -> list[dict]:
    """Every job log's timing line under ``results/<profile>/logs``: {job, family, startup/compute wall/CPU}."""
    logs = repo / "results" / profile / "logs"
    out = []
    for log in sorted(logs.rglob("*.log")):
        timing = jobclock.parse(log.read_text(errors="replace"))
        if timing is None:
            continue
        rel = log.relative_to(logs).with_suffix("")
        parts = rel.parts[1:]     # the rule's folder, then <model>/<spec> or <model>
        key = "/".join(parts) if len(parts) == 2 else (f"{parts[0]}/" if parts else "")
        out.append({"job": str(rel), "family": family_of(key) if rel.parts[0] in ("sample", "evaluate", "train",
                                                                                  "distill", "guided_stage1") else "other",
                    **timing})
    return out


def split(jobs: list[dict]) -> dict:
    return {"jobs": len(jobs), "startup": sum(j["startup_cpu_s"] for j in jobs),
            "compute": sum(j["compute_cpu_s"] for j in jobs)}


def slowest(jobs: list[dict], n: int = 10) -> str:
    top = sorted(jobs, key=lambda j: -(j["startup_wall_s"] + j["compute_wall_s"]))[:n]
    return ", ".join(f"{j['job']} {j['startup_wall_s'] + j['compute_wall_s']:.1f}"
                     f" ({j['startup_wall_s']:.1f} start-up)" for j in top)


def print_split(rows: list[tuple], jobs: list[dict]) -> None:
    """rows: (part, measured CPU s or None, its jobs); then the slowest jobs of each part."""
    print("\n| part | jobs | CPU s | start-up CPU s | compute CPU s | Snakemake + shells CPU s | start-up per job s |\n"
          "|---|---|---|---|---|---|---|")
    for name, cpu, part_jobs in rows:
        sp = split(part_jobs)
        rest = f"{cpu - sp['startup'] - sp['compute']:.0f}" if cpu is not None else "-"
        total = f"{cpu:.0f}" if cpu is not None else f"{sp['startup'] + sp['compute']:.0f}"
        per = f"{sp['startup'] / sp['jobs']:.2f}" if sp["jobs"] else "-"
        print(f"| {name} | {sp['jobs']} | {total} | {sp['startup']:.0f} | {sp['compute']:.0f} | {rest} | {per} |")
    print()
    for name, _, part_jobs in rows:
        if part_jobs:
            print(f"slowest {name} jobs, wall s: {slowest(part_jobs)}")
    by_verb: dict[str, list[dict]] = {}
    for j in jobs:
        by_verb.setdefault(j["verb"], []).append(j)
    print("\nper verb: " + "; ".join(
        f"{verb} {len(js)} jobs, start-up {sum(j['startup_cpu_s'] for j in js) / len(js):.2f} CPU-s/job, "
        f"compute {sum(j['compute_cpu_s'] for j in js) / len(js):.2f}" for verb, js in sorted(by_verb.items())))


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of ``cmd`` and every process it waited for."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
           "PYTHONPATH": os.pathsep.join(filter(None, (str(cwd / "src"), os.environ.get("PYTHONPATH"))))}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd[:6])} ... failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return "CPU model unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="toy")
    ap.add_argument("--cores", type=int, default=os.cpu_count())
    ap.add_argument("--families", default=",".join(FAMILIES), help="comma-separated, in this order")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copy (its path is printed)")
    ap.add_argument("--from-logs", nargs="?", const=str(REPO), default=None, metavar="ROOT",
                    help="only read the job logs of a finished run under ROOT (default: this tree); no run")
    args = ap.parse_args()
    cfg = config.load(args.profile)
    if args.from_logs:
        jobs = job_timings(Path(args.from_logs), args.profile)
        print(f"profile {args.profile}: the timing lines of {len(jobs)} job logs under "
              f"{args.from_logs}/results/{args.profile}/logs, "
              f"{cpu_model()}")
        print_split([(name, None, [j for j in jobs if j["family"] == name]) for name in (*FAMILIES, "other")]
                    + [("all", None, jobs)], jobs)
        return
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
    print(f"profile {args.profile}, snakemake --cores {args.cores}, {os.cpu_count()} CPUs ({cpu_model()}), "
          f"{time.strftime('%Y-%m-%d %H:%M')}, load average before: {load:.2f}")
    print("| part | banks | wall s | CPU s | budget s | wall / budget |\n|---|---|---|---|---|---|")
    for name, banks, wall, cpu, budget in rows:
        ratio = f"{wall / budget:.2f}" if budget else "-"
        print(f"| {name} | {banks} | {wall:.0f} | {cpu:.0f} | {budget or '-'} | {ratio} |")
    jobs = job_timings(repo, args.profile)
    cpu_of = {name: cpu for name, _, _, cpu, _ in rows}
    parts = [(name, cpu_of[name], [j for j in jobs if j["family"] == name]) for name in ("data", *families)
             if name in cpu_of and name != "data"]
    rest = [j for j in jobs if j["family"] == "other"]   # data, collect/report and the non-bank jobs
    parts.append(("data + collect/report + other", sum(cpu_of.get(n, 0.0) for n in ("data", "collect + report")), rest))
    print_split(parts + [("all", sum(r[3] for r in rows if r[0] not in ("skeleton + data + report",)), jobs)], jobs)
    if args.keep:
        print(f"kept: {repo}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
