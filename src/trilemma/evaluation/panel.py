"""The toy's metric panel of one sample bank, each number with a bootstrap 95% interval.

Columns (``metrics.csv``):
  fd            headline: Fréchet distance in random Fourier features at the data's scale
                (``features2d``; torch-fidelity's formula), the role Inception plays for FID
  fd_xy         the same on the raw 2-D coordinates (kept for comparison; not the headline, §13.1)
  nll           mean −log p(x) under the true mixture (mixtures only)
  coverage_jsd  JSD (bits) of the high-quality samples' per-mode histogram from uniform (mixtures only)
  modes, hq     PacGAN's modes covered and high-quality share
  precision, recall   Kynkäänniemi et al. 2019 through torch-fidelity, in the coordinates
  class_consistency   guidance banks: share of samples that are high quality and of the requested class

Uncertainty: ``<col>_ci`` is the half-width of a 95% interval, 1.96 × the standard deviation over
``evaluation.bootstrap`` bootstrap resamples of the bank (Efron & Tibshirani 1993, ch. 6), the
reference set held fixed (it is shared by every method, so its own noise does not change a
comparison).  Precision and recall get the binomial interval of a share over their samples, the k-NN
manifolds held fixed (re-running the k-NN search per resample would cost more than the rest of the
evaluation).  The spread over *training* seeds is separate: the tables report it across models.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from trilemma.evaluation.fidelity import frechet_from_statistics, precision_recall, statistics
from trilemma.evaluation.toy import coverage_jsd, mixture_nll, modes_covered, nearest_mode

if TYPE_CHECKING:
    from trilemma.schema.models import Evaluation

Z95 = 1.96


def point_panel(x: torch.Tensor, real: torch.Tensor, *, features, means: torch.Tensor, mode_labels: torch.Tensor,
                std: float | None, ev: Evaluation, seed: int, requested: torch.Tensor | None = None) -> dict:
    """Every metric of the bank ``x`` against the evaluation draw ``real``, with ``<name>_ci``."""
    x = x.double()
    phi = features(x)
    ref_phi, ref_xy = statistics(features(real)), statistics(real.double())
    k = means.shape[0]
    if k:
        nearest_d, nearest = nearest_mode(x, means)
        hq = nearest_d <= ev.hq_num_std * std
        nll = mixture_nll(x, means, std)
        consistent = hq & (mode_labels[nearest] == requested) if requested is not None else None

    def panel(idx: torch.Tensor) -> dict:
        out = {"fd": frechet_from_statistics(statistics(phi[idx]), ref_phi),
               "fd_xy": frechet_from_statistics(statistics(x[idx]), ref_xy)}
        if k:
            h = hq[idx]
            counts = torch.bincount(nearest[idx][h], minlength=k)
            out.update(modes=modes_covered(counts, ev.mode_min_share), hq=float(h.double().mean()),
                       nll=float(nll[idx].mean()), coverage_jsd=coverage_jsd(counts))
            if consistent is not None:
                out["class_consistency"] = float(consistent[idx].double().mean())
        return out

    n = x.shape[0]
    row = panel(torch.arange(n))
    g = torch.Generator().manual_seed(seed)
    reps = [panel(torch.randint(0, n, (n,), generator=g)) for _ in range(ev.bootstrap)]
    for key in list(row):
        row[f"{key}_ci"] = Z95 * float(np.std([r[key] for r in reps], ddof=1))
    prec, rec = precision_recall(x.float(), real.float(), neighborhood=ev.prc_neighborhood,
                                 max_samples=ev.max_prc_samples, seed=seed)
    m_gen, m_real = min(n, ev.max_prc_samples), min(real.shape[0], ev.max_prc_samples)
    row.update(precision=prec, recall=rec, precision_ci=_binomial(prec, m_gen), recall_ci=_binomial(rec, m_real),
               num_modes=k)
    if not k:
        row.update({c: math.nan for c in ("modes", "hq", "nll", "coverage_jsd")})
    return row


def _binomial(p: float, m: int) -> float:
    return Z95 * math.sqrt(max(p * (1 - p), 0.0) / m)
