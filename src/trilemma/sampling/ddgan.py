"""Denoising Diffusion GAN sampling (Xiao, Kreis & Vahdat 2022, Sec. 3.2, Eq. 8-9; code
``sample_from_model`` and ``sample_posterior`` of NVlabs/denoising-diffusion-gan).

The generator is an implicit denoiser: p(x_{t-1} | x_t) = int p(z) q(x_{t-1} | x_t, x0 = G(x_t, z, t)) dz.
Each step draws a fresh z, predicts x0' = G(x_t, z, t) and samples x_{t-1} from the Gaussian
posterior q(x_{t-1} | x_t, x0') of DDPM Eq. 6-7 (mean mu_tilde, variance beta_tilde) on the DDGAN
schedule.  At the last step (index 0 -> -1) beta_tilde = 0, so the output is G's x0 prediction, as in
the official code.  NFE = T.

:func:`q_sample_pairs` draws the training pairs (x_{t-1}, x_t) of the same chain (code
``q_sample_pairs``): x_{t-1} ~ q(x_{t-1} | x0), then x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) noise.
"""
from __future__ import annotations

import torch

from trilemma.diffusion.schedules import _bcast
from trilemma.sampling.common import randn_like


class ChainTable:
    """The per-index coefficients of the DDGAN chain, computed once (float64, then float32) from the
    schedule: the forward pair (x_{t-1} | x0, x_t | x_{t-1}) and the posterior q(x_{t-1} | x_t, x0).
    A training step then gathers a handful of numbers instead of re-deriving them."""

    def __init__(self, schedule):
        idx = torch.arange(schedule.num_steps)
        self.num_steps = schedule.num_steps
        alpha_prev, sigma_prev = schedule.alpha_sigma(idx - 1)
        c_x0, c_xt, beta_tilde, _ = schedule.posterior(idx, idx - 1)
        table = {"alpha_prev": alpha_prev, "sigma_prev": sigma_prev, "sqrt_alpha": (1 - schedule.betas).sqrt(),
                 "sqrt_beta": schedule.betas.sqrt(), "c_x0": c_x0, "c_xt": c_xt, "std": beta_tilde.sqrt()}
        for name, value in table.items():
            setattr(self, name, value.float())

    def __call__(self, name: str, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return _bcast(getattr(self, name).to(like.device)[t], like)


def posterior_sample(table: ChainTable, x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                     noise: torch.Tensor) -> torch.Tensor:
    """x_{t-1} = mu_tilde(x_t, x0) + sqrt(beta_tilde_t) noise, for per-sample 0-indexed t."""
    return table("c_x0", t, x_t) * x0 + table("c_xt", t, x_t) * x_t + table("std", t, x_t) * noise


def q_sample_pairs(table: ChainTable, x0: torch.Tensor, t: torch.Tensor, generator: torch.Generator | None):
    """(x_{t-1}, x_t) with x_{t-1} ~ q(x_{t-1} | x0) (x0 itself at t = 0) and one forward step to x_t."""
    x_prev = table("alpha_prev", t, x0) * x0 + table("sigma_prev", t, x0) * randn_like(x0, generator)
    x_t = table("sqrt_alpha", t, x0) * x_prev + table("sqrt_beta", t, x0) * randn_like(x0, generator)
    return x_prev, x_t


@torch.no_grad()
def sample_ddgan(denoiser, x_T: torch.Tensor, *, latent_dim: int,
                 generator: torch.Generator | None = None, units: float = 1.0) -> torch.Tensor:
    """Walk indices T-1, ..., 0 of ``denoiser.schedule`` from ``x_T``; the latent z enters as the
    denoiser's ``cond`` (a fresh draw per step), so one sampler serves every T.  The chain runs in the
    units G was trained in (``stages.train_gan.data_units``); the samples are returned divided by
    ``units``, in data coordinates."""
    table = ChainTable(denoiser.schedule)
    x = x_T
    for i in reversed(range(table.num_steps)):
        t = torch.full((x.shape[0],), i, dtype=torch.long, device=x.device)
        z = torch.randn((x.shape[0], latent_dim), generator=generator, device=x.device, dtype=x.dtype)
        x0, _ = denoiser(x, t, z)
        x = posterior_sample(table, x0, x, t, randn_like(x, generator) if i > 0 else torch.zeros_like(x))
    return x / units
