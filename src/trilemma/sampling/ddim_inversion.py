"""DDIM inversion (Song, Meng & Ermon 2021, Sec. 4.3 and 5.4): the eta = 0 update is the Euler
discretisation of the ODE of Eq. 14,

    d(x / sqrt(abar)) = eps(x, t) d(sqrt((1 - abar) / abar)),

so it can be run from data to noise as well.  One step from time s to a *later* time t (abar_t < abar_s)
with the denoiser evaluated at the current point (x_s, s):

    x_t = sqrt(abar_t) x0_hat(x_s, s) + sqrt(1 - abar_t) eps_hat(x_s, s)        (Eq. 12 with sigma = 0)

— the same update as the sampler's (``sampling/ddim.py``: :func:`ddim_step` with explicit coefficients),
walked over the ascending grid.  Encoding x_0 -> x_T with S steps and decoding with the same S steps
reconstructs x_0 up to the discretisation error, which vanishes as S grows (DDIM Table 2).
"""
from __future__ import annotations

import torch

from trilemma.sampling.ddim import ddim_step, sample_ddim


def inversion_coefficients(schedule, t) -> tuple[float, float, float]:
    """(c_x0, c_eps, c_noise) = (sqrt(abar_t), sqrt(1 - abar_t), 0): Eq. 12 at sigma = 0, towards t."""
    alpha, sigma = schedule.alpha_sigma_float(float(t))
    return alpha, sigma, 0.0


@torch.no_grad()
def invert_ddim(denoiser, x_0: torch.Tensor, ts: torch.Tensor, *, cond=None) -> torch.Tensor:
    """Encode ``x_0`` into x_T by walking the sampler's descending grid ``ts`` (ending at -1 or 0: clean
    data) backwards: the DDIM encoder of Sec. 5.4."""
    up = torch.flip(ts, [0])
    x = x_0
    for s, t in zip(up[:-1], up[1:]):
        x, _ = ddim_step(denoiser, x, float(s), float(t), cond=cond,
                         coefficients=inversion_coefficients(denoiser.schedule, t))
    return x


@torch.no_grad()
def reconstruct_ddim(denoiser, x_0: torch.Tensor, ts: torch.Tensor, *, cond=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_T, x_0'): encode with :func:`invert_ddim`, decode with :func:`sample_ddim` (eta = 0) on the same grid."""
    x_T = invert_ddim(denoiser, x_0, ts, cond=cond)
    return x_T, sample_ddim(denoiser, x_T, ts, cond=cond)
