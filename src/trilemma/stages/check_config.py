"""Validate the configuration of a profile (schema + cross-key rules) and list the DAG's jobs."""
from __future__ import annotations

from trilemma import config, dag


def add_arguments(p):
    p.add_argument("--jobs", action="store_true", help="also print every job's command")


def run(args):
    cfg = config.load(args.profile)
    jobs = dag.jobs(cfg)
    print(f"profile {cfg['profile']}: configuration valid; {len(jobs)} jobs")
    if args.jobs:
        for job in jobs:
            print(f"{job.name}: {job.shell}")
