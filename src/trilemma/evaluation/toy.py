"""The toy's own metrics, PacGAN convention (Lin et al. 2018, Sec. 5.1; DDGAN Fig. 6):
a sample is *high quality* when it lies within ``num_std`` standard deviations of its nearest mode,
and a mode is *covered* when it holds at least ``min_share`` of the high-quality samples it would
get if samples were spread evenly over the modes.

For class-conditional banks (guidance), *class consistency* is the share of samples that are high
quality *and* whose nearest mode belongs to the requested class (gauss25: the grid row): what
guidance trades diversity for (our toy stand-in for the Inception score of the CFG paper).

Where the data has a density (the mixtures), two closed-form measures join them (methods.md §13.1):
the mean negative log-likelihood of the samples under the true mixture (PacGAN's code), and the
Jensen–Shannon divergence of the high-quality samples' per-mode histogram from uniform (coverage
balance; 0 when every mode gets its share, 1 bit when all the mass sits in one of many modes)."""
from __future__ import annotations

import math

import torch
from scipy.spatial.distance import jensenshannon


def mode_metrics(samples: torch.Tensor, means: torch.Tensor, std: float, *, num_std: float = 3.0,
                 min_share: float = 0.2) -> dict:
    if means.shape[0] == 0:
        return {"modes": math.nan, "hq": math.nan, "num_modes": 0}
    nearest_d, nearest = nearest_mode(samples, means)
    hq = nearest_d <= num_std * std
    counts = torch.bincount(nearest[hq], minlength=means.shape[0])
    return {"modes": modes_covered(counts, min_share), "hq": float(hq.double().mean()),
            "num_modes": int(means.shape[0])}


def nearest_mode(samples: torch.Tensor, means: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(distance to the nearest mode mean, its index) of every sample."""
    return torch.cdist(samples.double(), means.double()).min(dim=1)


def modes_covered(counts: torch.Tensor, min_share: float) -> int:
    """Modes holding at least ``min_share`` of the even share of the high-quality samples (PacGAN)."""
    expected = counts.sum().item() / counts.shape[0]
    return int((counts >= min_share * expected).sum().item()) if expected > 0 else 0


def log_mixture(x: torch.Tensor, means: torch.Tensor, std: float) -> torch.Tensor:
    """Per-row log p(x) of the equal-weight isotropic mixture Σ_k (1/K) N(x; μ_k, std² I)."""
    sq = torch.cdist(x.double(), means.double()).square()
    log_comp = -sq / (2 * std ** 2) - 0.5 * x.shape[1] * math.log(2 * math.pi * std ** 2)
    return torch.logsumexp(log_comp, dim=1) - math.log(means.shape[0])


def mixture_nll(samples: torch.Tensor, means: torch.Tensor, std: float) -> torch.Tensor:
    """Per-sample −log p(x) under the true mixture (:func:`log_mixture`)."""
    return -log_mixture(samples, means, std)


def coverage_jsd(counts: torch.Tensor) -> float:
    """Jensen–Shannon divergence (bits) of a per-mode histogram from the uniform one; 1 if it is empty."""
    total = float(counts.sum())
    if total == 0:
        return 1.0
    p = counts.double().numpy() / total
    return float(jensenshannon(p, [1.0 / len(p)] * len(p), base=2) ** 2)


def class_consistency(samples: torch.Tensor, requested: torch.Tensor, means: torch.Tensor,
                      mode_labels: torch.Tensor, std: float, *, num_std: float = 3.0) -> float:
    nearest_d, nearest = nearest_mode(samples, means)
    ok = (nearest_d <= num_std * std) & (mode_labels[nearest] == requested)
    return float(ok.double().mean())
