"""DDIM (Song, Meng & Ermon 2021), the generalized update of Eq. 12 on a subsequence tau:

    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z,
    sigma(eta) = eta * sqrt((1 - abar_s) / (1 - abar_t)) * sqrt(1 - abar_t / abar_s)   (Eq. 16)

eta = 0 is DDIM (deterministic), eta = 1 the DDPM posterior variance.  ``sigma_hat=True`` is the
paper's sigma-hat row (App. D.3): noise sqrt(1 - abar_t / abar_s) with the direction coefficient of
eta = 1.  No x0 clipping, as in the official ``generalized_steps``.  The last step returns x0_hat.
The per-step coefficients are computed once per grid (float64), so the loop costs only the network
and three tensor operations per step.
"""
from __future__ import annotations

import torch

from trilemma.diffusion.schedules import _bcast
from trilemma.sampling.common import randn_like


def ddim_sigma(log_abar_t: torch.Tensor, log_abar_s: torch.Tensor, eta: float) -> torch.Tensor:
    """sigma_tau(eta) of DDIM Eq. 16."""
    abar_t, abar_s = log_abar_t.exp(), log_abar_s.exp()
    return eta * ((1 - abar_s) / (1 - abar_t)).sqrt() * (-torch.expm1(log_abar_t - log_abar_s)).sqrt()


def ddim_coefficients(schedule, t, s, *, eta: float = 0.0, sigma_hat: bool = False):
    """(c_x0, c_eps, c_noise) of the step t -> s: x_s = c_x0 x0_hat + c_eps eps_hat + c_noise z.
    Python floats for one time (the samplers' loop), float64 tensors for per-sample times (B,)
    (the teacher steps of progressive distillation)."""
    la_t, la_s = schedule.log_alpha_bar(t), schedule.log_alpha_bar(s)
    sigma = ddim_sigma(la_t, la_s, 1.0 if sigma_hat else eta)
    direction = (1 - la_s.exp() - sigma ** 2).clamp_min(0).sqrt()
    noise = (-torch.expm1(la_t - la_s)).sqrt() if sigma_hat else sigma
    coefficients = ((0.5 * la_s).exp(), direction, noise)
    if la_t.ndim == 0 and la_s.ndim == 0:
        return tuple(float(c) for c in coefficients)
    return coefficients


def ddim_step(denoiser, x, t, s, *, eta: float = 0.0, sigma_hat: bool = False, cond=None,
              generator=None, coefficients=None):
    """One generalized DDIM step from time t to s < t (scalars, or per-sample (B,) tensors);
    returns (x_s, x0_hat)."""
    c_x0, c_eps, c_noise = coefficients or ddim_coefficients(denoiser.schedule, t, s, eta=eta, sigma_hat=sigma_hat)
    x0, eps = denoiser(x, t if isinstance(t, float) or (torch.is_tensor(t) and t.ndim) else float(t), cond)
    if isinstance(c_x0, float):
        x_s = torch.mul(x0, c_x0).add_(eps, alpha=c_eps)
        if c_noise > 0:
            x_s = x_s + c_noise * randn_like(x, generator)
        return x_s, x0
    c_x0, c_eps, c_noise = (_bcast(c, x) for c in (c_x0, c_eps, c_noise))
    x_s = c_x0 * x0 + c_eps * eps
    if bool((c_noise > 0).any()):
        x_s = x_s + c_noise * randn_like(x, generator)
    return x_s, x0


@torch.no_grad()
def sample_ddim(denoiser, x_T: torch.Tensor, ts: torch.Tensor, *, eta: float = 0.0,
                sigma_hat: bool = False, cond=None, generator: torch.Generator | None = None, callback=None):
    """Walk the descending grid ``ts`` (ending at -1, abar = 1) from ``x_T``; ``callback({i, t, x,
    denoised})`` after each step (k-diffusion's convention)."""
    times = ts.tolist()
    steps = list(zip(times[:-1], times[1:]))
    coeffs = grid_coefficients(denoiser.schedule, ts, eta=eta, sigma_hat=sigma_hat)
    x, x0 = x_T, x_T
    for i, ((t, s), c) in enumerate(zip(steps, coeffs)):
        x, x0 = ddim_step(denoiser, x, t, s, cond=cond, generator=generator, coefficients=c)
        if callback is not None:
            callback({"i": i, "t": t, "x": x, "denoised": x0})
    return x0 if steps else x


def grid_coefficients(schedule, ts: torch.Tensor, *, eta: float = 0.0, sigma_hat: bool = False) -> list[tuple]:
    """(c_x0, c_eps, c_noise) of every step of the grid ``ts`` as Python floats, from one call of
    :func:`ddim_coefficients` on the whole grid (a few tensor operations instead of some twenty per
    step: at batch 100 they cost as much as a fifth of the toy network's time).  The same values, bit
    for bit, as one call per step (tests/test_samplers.py)."""
    if len(ts) < 2:
        return []
    per_step = ddim_coefficients(schedule, ts[:-1], ts[1:], eta=eta, sigma_hat=sigma_hat)
    return list(zip(*(c.tolist() for c in per_step)))
