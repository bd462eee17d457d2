"""Sample-quality metrics through torch-fidelity (not re-implemented here).

The Frechet distance of any feature set (the toy's random Fourier features, its raw coordinates as
``fd_xy``, an image profile's Inception or classifier features) uses
``torch_fidelity.metric_fid`` (Gaussian statistics and the trace formula of Heusel et al. 2017)
and precision/recall ``torch_fidelity.metric_prc`` (k-NN manifolds, Kynkaanniemi et al. 2019),
with the generated samples as input 1 and the real ones as input 2, torch-fidelity 0.4's convention.
"""
from __future__ import annotations

import numpy as np
import torch
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric


def statistics(features: torch.Tensor) -> dict:
    """torch-fidelity's Gaussian statistics (mu, sigma) of a feature set, in float64."""
    return fid_features_to_statistics(features.double().cpu())


def frechet_from_statistics(s1: dict, s2: dict) -> float:
    return float(fid_statistics_to_metric(s1, s2, verbose=False)[KEY_METRIC_FID])


def frechet_distance(generated: torch.Tensor, real: torch.Tensor) -> float:
    return frechet_from_statistics(statistics(generated), statistics(real))


def precision_recall(generated: torch.Tensor, real: torch.Tensor, *, neighborhood: int = 3,
                     max_samples: int | None = None, seed: int = 0) -> tuple[float, float]:
    if max_samples is not None:
        g = torch.Generator().manual_seed(seed)
        if generated.shape[0] > max_samples:
            generated = generated[torch.randperm(generated.shape[0], generator=g)[:max_samples]]
        if real.shape[0] > max_samples:
            real = real[torch.randperm(real.shape[0], generator=g)[:max_samples]]
    out = prc_features_to_metric(generated.float().cpu(), real.float().cpu(), prc_neighborhood=neighborhood,
                                 prc_batch_size=10000, save_cpu_ram=True, verbose=False)
    return float(out[KEY_METRIC_PRECISION]), float(out[KEY_METRIC_RECALL])


def finite_or_nan(x: float) -> float:
    return float(x) if np.isfinite(x) else float("nan")
