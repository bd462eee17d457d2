"""The toy's own metrics, PacGAN convention (Lin et al. 2018, Sec. 5.1; DDGAN Fig. 6):
a sample is *high quality* when it lies within ``num_std`` standard deviations of its nearest mode,
and a mode is *covered* when it holds at least ``min_share`` of the high-quality samples it would
get if samples were spread evenly over the modes.

For class-conditional banks (guidance), *class consistency* is the share of samples that are high
quality *and* whose nearest mode belongs to the requested class (gauss25: the grid row): what
guidance trades diversity for (our toy stand-in for the Inception score of the CFG paper)."""
from __future__ import annotations

import math

import torch


def mode_metrics(samples: torch.Tensor, means: torch.Tensor, std: float, *, num_std: float = 3.0,
                 min_share: float = 0.2) -> dict:
    if means.shape[0] == 0:
        return {"modes": math.nan, "hq": math.nan, "num_modes": 0}
    d = torch.cdist(samples.double(), means.double())
    nearest_d, nearest = d.min(dim=1)
    hq = nearest_d <= num_std * std
    counts = torch.bincount(nearest[hq], minlength=means.shape[0])
    expected = hq.sum().item() / means.shape[0]
    covered = int((counts >= min_share * expected).sum().item()) if expected > 0 else 0
    return {"modes": covered, "hq": float(hq.double().mean()), "num_modes": int(means.shape[0])}


def class_consistency(samples: torch.Tensor, requested: torch.Tensor, means: torch.Tensor,
                      mode_labels: torch.Tensor, std: float, *, num_std: float = 3.0) -> float:
    d = torch.cdist(samples.double(), means.double())
    nearest_d, nearest = d.min(dim=1)
    ok = (nearest_d <= num_std * std) & (mode_labels[nearest] == requested)
    return float(ok.double().mean())
