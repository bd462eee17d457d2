"""The ``code`` stage of the DVC front-end (``trilemma dvc-yaml``): one file per job,
``results/<profile>/code/<job>.md5``, listing the md5 of each module the job depends on
(``dag.code``: its import closure, ``codedeps.py``), so a DVC stage re-runs when one of its own modules changes and only then.

It first checks that the profile's ``dvc.yaml`` and grid file are those the DAG gives now: DVC runs
this stage before every other, so ``dvc repro`` or ``dvc exp run -S <grid key>=...`` with a grid
that no longer matches the config (a new DDIM step, say) stops here and says to run
``make dvc.yaml``, instead of running the old grid."""
from __future__ import annotations

import hashlib
from pathlib import Path

from trilemma import config, dag
from trilemma.stages import dvc_yaml


def add_arguments(p):
    p.add_argument("--out", required=True, help="the directory of the per-job files")


def stamp(job: dag.Job) -> str:
    lines = []
    for path in dvc_yaml._code(job):
        with open(path, "rb") as fh:
            lines.append(f"{hashlib.file_digest(fh, 'md5').hexdigest()}  {path}\n")
    return "".join(lines)


def run(args):
    stale = [path for path, text in dvc_yaml.render_profile(args.profile).items()
             if not Path(path).exists() or Path(path).read_text() != text]
    if stale:
        raise SystemExit(f"{', '.join(stale)} no longer match(es) the config: the grid changed. "
                         "Run `make dvc.yaml` (trilemma dvc-yaml --all), then run DVC again.")
    cfg = config.load(args.profile)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    jobs = dag.jobs(cfg)
    for job in jobs:
        (out / f"{job.name}.md5").write_text(stamp(job))
    print(f"wrote {len(jobs)} code files to {out}")
