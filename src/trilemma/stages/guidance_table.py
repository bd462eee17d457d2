"""Image profiles: ``tables/guidance.md`` from metrics.csv — the CFG teacher (DDIM, 2 NFE per step) at
its reference step count for every w of ``guidance.eval.w`` and the guided student at the headline
steps (1 NFE per step), then w x steps, with FID, IS, KID and precision/recall in the profile's
feature space (``trilemma.reporting.images.guidance_table``).  Its own DAG job because the image
report is written by the toy's report stage, which this branch leaves as it is; the report links the
table."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from trilemma import config, paths
from trilemma.artifacts import _atomic


def add_arguments(p):
    p.add_argument("--out", required=True, help="output tables/guidance.md")


def run(args):
    from trilemma.reporting.images import guidance_table

    cfg = config.load_typed(args.profile)
    df = pd.read_csv(paths.fmt(paths.METRICS_CSV, profile=cfg.profile))
    space = str(df["feature_space"].iloc[0]) if len(df) else "unknown"
    text = guidance_table(df, cfg.guidance, space) + "\n"
    _atomic(args.out, lambda tmp: Path(tmp).write_text(text))
    print(f"wrote {args.out}")
