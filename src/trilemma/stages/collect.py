"""Gather the metrics of every sample bank of the profile's grid into one ``metrics.csv``, and the
headline banks' numbers into ``headline.json``, the file DVC reads as metrics (``dvc metrics show``,
``dvc metrics diff``)."""
from __future__ import annotations

import json
import math

import pandas as pd

from trilemma import config, dag, paths
from trilemma.artifacts import load_json

# fd: the headline Fréchet distance in the profile's feature space (feature_space); <metric>_ci: the
# half-width of its 95% interval (2-D profiles: trilemma.evaluation.panel).
# The first eleven columns keep the order of the first wave's metrics.csv.
COLUMNS = ["method", "model", "sampler", "steps", "nfe", "time_per_100_s", "fd", "precision", "recall",
           "modes", "hq", "fd_ci", "precision_ci", "recall_ci", "modes_ci", "hq_ci", "nll", "nll_ci",
           "coverage_jsd", "coverage_jsd_ci", "fd_xy", "fd_xy_ci", "eta", "variance", "skip", "sigma_hat", "solver", "num_modes", "num_samples",
           "spec", "dataset", "feature_space", "device", "round", "w", "class_consistency", "class_consistency_ci",
           "fd_to_teacher", "fd_to_target", "stochastic",
           # the distillation bill of the bank's model (issue 18; training/bill.py), empty for undistilled models
           "train_teacher_evals", "train_updates", "train_wall_s", "train_cumulative_teacher_evals",
           "train_cumulative_updates", "train_cumulative_wall_s", "train_device"]


# The numbers of each headline bank in headline.json: quality with its 95% interval, diversity, cost.
HEADLINE_METRICS = ["fd", "fd_ci", "precision", "recall", "modes", "hq", "nfe", "time_per_100_s"]


def add_arguments(p):
    p.add_argument("--out", required=True, help="output metrics.csv")
    p.add_argument("--headline", default=None,
                   help="also write the headline banks' numbers (report.fast_sampling) to this JSON file")


def headline(fast_sampling: list[str], df: pd.DataFrame) -> dict:
    """{bank id: {metric: value}} for the banks of ``report.fast_sampling`` (the fast-sampling table's
    rows: each method at its headline setting), in that order; metrics a bank lacks are left out."""
    out = {}
    for bank in fast_sampling:
        b = paths.Bank.parse(bank)
        row = df[(df["model"] == b.model) & (df["spec"] == b.spec)].iloc[0]
        values = {m: row[m].item() if hasattr(row[m], "item") else row[m] for m in HEADLINE_METRICS}
        out[bank] = {m: float(f"{v:.6g}") if isinstance(v, float) else v   # metrics.csv's precision
                     for m, v in values.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}
    return out


def collect(profile: str, bank_ids: list[str]) -> pd.DataFrame:
    """metrics.csv: one row per bank of the DAG (``dag.bank_ids``), our columns first."""
    rows = []
    for bank in bank_ids:
        rows.append(load_json(paths.Bank.parse(bank).path(paths.BANK_METRICS, profile)))
    df = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in df:
            df[col] = None
    return df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]


def run(args):
    cfg = config.load_typed(args.profile)
    df = collect(cfg.profile, dag.bank_ids(cfg.plain()))   # the DAG reads the plain values
    df.to_csv(args.out, index=False, float_format="%.6g")
    print(f"wrote {args.out}: {len(df)} rows")
    if args.headline:
        with open(args.headline, "w") as fh:
            json.dump(headline(cfg.report.fast_sampling, df), fh, indent=1)
            fh.write("\n")
        print(f"wrote {args.headline}")
