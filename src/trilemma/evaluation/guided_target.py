"""The exact distribution that guidance aims at, on the toy's mixtures (issue 24, item 4).

Classifier-free guidance at strength w samples, by construction of its score, the tilted conditional
(Ho & Salimans 2022, Sec. 3.2; the "implicit classifier" p(y | x)^w):

    p_a(x | y) ∝ p(x | y)^a p(x)^(1 - a),   a = 1 + w,

and classifier guidance at scale s the same family with a = s (Dhariwal & Nichol 2021, Sec. 4:
p(x) p(y | x)^s ∝ p(x)^(1-s) p(x, y)^s).  These hold for the data (t = 0); the guided score at t > 0 is
not the score of the diffused p_a, which is exactly what comparing samples against p_a measures.
For a Gaussian mixture both factors are closed-form, and p_a is normalised numerically on a grid of
``cells_per_std`` cells per mode std around the modes; a draw picks cells by their mass and a uniform
point inside each.
"""
from __future__ import annotations

import torch

from trilemma.evaluation.toy import log_mixture


def guided_target_draw(means: torch.Tensor, mode_labels: torch.Tensor, std: float, labels: torch.Tensor,
                       a: float, generator: torch.Generator, *, cells_per_std: int = 4,
                       margin_std: float = 6.0) -> torch.Tensor:
    """One point of p_a(x | y) for each requested label (row order kept)."""
    h = std / cells_per_std
    lo = means.min(0).values.double() - margin_std * std
    hi = means.max(0).values.double() + margin_std * std
    axes = [torch.arange(float(l), float(u), h, dtype=torch.float64) + h / 2 for l, u in zip(lo, hi)]
    cells = torch.cartesian_prod(*axes)
    log_p = log_mixture(cells, means, std)
    out = torch.empty(labels.shape[0], means.shape[1], dtype=torch.float64)
    for y in labels.unique().tolist():
        rows = (labels == y).nonzero().squeeze(1)
        log_target = a * log_mixture(cells, means[mode_labels == y], std) + (1 - a) * log_p
        probs = torch.softmax(log_target, 0)
        pick = torch.multinomial(probs, rows.numel(), replacement=True, generator=generator)
        jitter = (torch.rand(rows.numel(), means.shape[1], generator=generator, dtype=torch.float64) - 0.5) * h
        out[rows] = cells[pick] + jitter
    return out


def guidance_exponent(method: str, w: float) -> float:
    """a of p_a for a guided bank: 1 + w for CFG and its distilled students, s for classifier guidance."""
    return float(w) if method == "classifier_guidance" else 1.0 + float(w)
