"""Comparisons that respect the error bars: a difference inside the uncertainty is a tie.

A setting measured by several trained models (training seeds) is summarised by the mean over models;
its 95% half-width combines the spread over seeds and each bank's own bootstrap interval
(``<metric>_ci``): H = 1.96 sqrt((s²_seeds + mean (h_i / 1.96)²) / k).  A single bank keeps its
bootstrap half-width.  Two settings differ when |mean_a − mean_b| > sqrt(H_a² + H_b²) (independent
errors, in quadrature); otherwise the report calls it a tie.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

Z95 = 1.96


@dataclass(frozen=True)
class Estimate:
    mean: float
    half_width: float
    runs: int

    def __str__(self) -> str:
        return f"{self.mean:.4g} ± {self.half_width:.2g}"


def estimate(rows: pd.DataFrame, col: str) -> Estimate:
    v = pd.to_numeric(rows[col]).to_numpy(dtype=float)
    h = (pd.to_numeric(rows[f"{col}_ci"]).to_numpy(dtype=float) if f"{col}_ci" in rows
         else np.zeros_like(v))
    h = np.nan_to_num(h)
    k = len(v)
    if k == 0:
        return Estimate(math.nan, math.nan, 0)
    seeds = float(np.var(v, ddof=1)) if k > 1 else 0.0
    return Estimate(float(v.mean()), Z95 * math.sqrt((seeds + float(np.mean((h / Z95) ** 2))) / k), k)


def verdict(a: Estimate, b: Estimate, lower_is_better: bool = True) -> str:
    """'better', 'worse' or 'tie': ``a`` against ``b``."""
    diff = a.mean - b.mean
    if not math.isfinite(diff) or abs(diff) <= math.hypot(a.half_width, b.half_width):
        return "tie"
    return "better" if (diff < 0) == lower_is_better else "worse"
