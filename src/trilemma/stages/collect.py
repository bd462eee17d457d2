"""Gather the metrics of every sample bank of the profile's grid into one ``metrics.csv``."""
from __future__ import annotations

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


def add_arguments(p):
    p.add_argument("--out", required=True, help="output metrics.csv")


def collect(cfg) -> pd.DataFrame:
    rows = []
    for bank in dag.bank_ids(cfg):
        model, spec = bank.split("/")
        rows.append(load_json(paths.fmt(paths.BANK_METRICS, profile=cfg["profile"], model=model, spec=spec)))
    df = pd.DataFrame(rows)
    for col in COLUMNS:
        if col not in df:
            df[col] = None
    return df[COLUMNS + [c for c in df.columns if c not in COLUMNS]]


def run(args):
    cfg = config.load(args.profile)
    df = collect(cfg)
    df.to_csv(args.out, index=False, float_format="%.6g")
    print(f"wrote {args.out}: {len(df)} rows")
