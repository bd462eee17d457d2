"""The consistency function of consistency models (Song, Dhariwal, Chen & Sutskever, ICML 2023,
Eq. 5; methods.md §13.3) on the project's VP models.

The paper works in EDM's variance-exploding variables: x~ = x + sigma~ z with the data at sigma~ = 0.
A VP state z_t = alpha_t x + sigma_t eps is that state scaled, x~_t = z_t / alpha_t at
sigma~_t = sigma_t / alpha_t = exp(-lambda_t / 2), and the probability-flow ODE is the same curve in
both (DDIM is its Euler step in (x~, sigma~)).  With sigma_data = 1 EDM's preconditioning is the
v-parameterization of progressive distillation: c_skip = 1 / (sigma~^2 + 1) = alpha^2,
c_out = sigma~ / sqrt(sigma~^2 + 1) = sigma, and D = c_skip x~ + c_out F gives x_hat = alpha z + sigma F,
so F = -v.  For any parameterization F = sigma x0_hat - alpha eps_hat (the denoiser contract; no
division), and the consistency model is (Eq. 5 with the paper's shifted coefficients, App. C):

  f_theta(z_t, t) = c_skip(t) z_t / alpha_t + c_out(t) F_theta(z_t, t),
  c_skip(t) = 1 / ((sigma~_t - sigma~_eps)^2 + 1),   c_out(t) = (sigma~_t - sigma~_eps) / sqrt(sigma~_t^2 + 1),

so that f_theta(z, t_eps) = z / alpha_{t_eps} exactly (the boundary condition f(x~, eps) = x~), for any
weights, while at eps -> 0 f_theta is the network's own x0_hat: a consistency model initialised from the
teacher's weights starts as the teacher's denoiser (as the paper initialises CD from the teacher).
Time is the teacher's own t in [0, 1]; the boundary time ``t_min`` (eps) is a config key.
"""
from __future__ import annotations

import torch
from torch import nn

from trilemma.diffusion.schedules import _bcast


def sigma_tilde(schedule, t: torch.Tensor) -> torch.Tensor:
    """sigma~_t = sigma_t / alpha_t = exp(-lambda_t / 2), float64."""
    return torch.exp(-0.5 * schedule.logsnr(torch.as_tensor(t, dtype=torch.float64)))


def discretisation(t_min: float, points: int) -> torch.Tensor:
    """t_1 = t_min < ... < t_N = 1: N points uniform in the teacher's time (the cosine schedule's
    sigma~_t = tan(a t + b) spaces them densely at low noise, the role of EDM's rho = 7 in the paper)."""
    if points < 2:
        raise ValueError(f"the discretisation needs N >= 2 points, got {points}")
    return torch.linspace(t_min, 1.0, points, dtype=torch.float64)


class ConsistencyFunction(nn.Module):
    """f_theta(z_t, t) around a denoiser (``denoiser(z, t, cond) -> (x0_hat, eps_hat)``)."""

    def __init__(self, denoiser, t_min: float):
        super().__init__()
        self.denoiser, self.t_min = denoiser, float(t_min)
        self.sigma_min = float(sigma_tilde(denoiser.schedule, self.t_min))

    @property
    def schedule(self):
        return self.denoiser.schedule

    def coefficients(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(c_skip, c_out, alpha, sigma) at per-example times ``t`` (float64)."""
        s = sigma_tilde(self.schedule, t)
        shifted = s - self.sigma_min
        alpha, sigma = self.schedule.alpha_sigma(t)
        return 1.0 / (shifted ** 2 + 1.0), shifted / torch.sqrt(s ** 2 + 1.0), alpha, sigma

    def forward(self, z_t: torch.Tensor, t, cond=None) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64, device=z_t.device)
        t = t.expand(z_t.shape[0]) if t.ndim == 0 else t
        c_skip, c_out, alpha, sigma = (_bcast(c, z_t) for c in self.coefficients(t))
        x0, eps = self.denoiser(z_t, t, cond)
        return c_skip * (z_t / alpha) + c_out * (sigma * x0 - alpha * eps)
