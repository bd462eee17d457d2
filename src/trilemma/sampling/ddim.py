"""DDIM (Song, Meng & Ermon 2021), the generalized update of Eq. 12 on a subsequence tau:

    x_s = sqrt(abar_s) x0_hat + sqrt(1 - abar_s - sigma^2) eps_hat + sigma z,
    sigma(eta) = eta * sqrt((1 - abar_s) / (1 - abar_t)) * sqrt(1 - abar_t / abar_s)   (Eq. 16)

eta = 0 is DDIM (deterministic), eta = 1 the DDPM posterior variance.  ``sigma_hat=True`` is the
paper's sigma-hat row (App. D.3): noise sqrt(1 - abar_t / abar_s) with the direction coefficient of
eta = 1.  No x0 clipping, as in the official ``generalized_steps``.  The last step returns x0_hat.
"""
from __future__ import annotations

import torch

from trilemma.diffusion.schedules import _bcast
from trilemma.sampling.common import full_t, randn_like


def ddim_sigma(log_abar_t: torch.Tensor, log_abar_s: torch.Tensor, eta: float) -> torch.Tensor:
    """sigma_tau(eta) of DDIM Eq. 16."""
    abar_t, abar_s = log_abar_t.exp(), log_abar_s.exp()
    return eta * ((1 - abar_s) / (1 - abar_t)).sqrt() * (-torch.expm1(log_abar_t - log_abar_s)).sqrt()


def ddim_step(denoiser, x, t, s, *, eta: float = 0.0, sigma_hat: bool = False, cond=None,
              generator=None):
    """One generalized DDIM step from time t to s < t (scalars, or per-example (B,) vectors as in
    progressive distillation's teacher steps); returns (x_s, x0_hat)."""
    sched = denoiser.schedule
    x0, eps = denoiser(x, full_t(t, x), cond)
    la_t, la_s = sched.log_alpha_bar(t), sched.log_alpha_bar(s)
    sigma = ddim_sigma(la_t, la_s, 1.0 if sigma_hat else eta)
    direction = (1 - la_s.exp() - sigma ** 2).clamp_min(0).sqrt()
    noise_scale = (-torch.expm1(la_t - la_s)).sqrt() if sigma_hat else sigma
    x_s = _bcast((0.5 * la_s).exp(), x) * x0 + _bcast(direction, x) * eps
    if bool((noise_scale > 0).any()):
        x_s = x_s + _bcast(noise_scale, x) * randn_like(x, generator)
    return x_s, x0


@torch.no_grad()
def sample_ddim(denoiser, x_T: torch.Tensor, ts: torch.Tensor, *, eta: float = 0.0,
                sigma_hat: bool = False, cond=None, generator: torch.Generator | None = None):
    """Walk the descending grid ``ts`` (ending at -1, abar = 1) from ``x_T``."""
    x = x_T
    for i in range(len(ts) - 1):
        x, x0 = ddim_step(denoiser, x, ts[i], ts[i + 1], eta=eta, sigma_hat=sigma_hat,
                          cond=cond, generator=generator)
    return x0 if len(ts) > 1 else x
