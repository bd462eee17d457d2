"""Multistep consistency sampling (Song et al. 2023, Algorithm 1; methods.md §13.3) on a consistency
model of :mod:`trilemma.diffusion.consistency`:

  x <- f_theta(x_T, T);  for tau in tau_1 > ... > tau_{N-1}:  x <- f_theta(x + sqrt(tau~^2 - eps~^2) z, tau)

in the paper's variance-exploding variables (tau~ = sigma~_tau = sigma_tau / alpha_tau); the network
sees the VP state alpha_tau (x + sqrt(tau~^2 - eps~^2) z).  T = 1, the start of every bank (x_T ~ N(0, I));
the re-noising times tau are the teacher's times, from the config (``sampling.cd.tau``).  NFE = N.
"""
from __future__ import annotations

import torch

from trilemma.diffusion.consistency import ConsistencyFunction, sigma_tilde
from trilemma.sampling.common import randn_like


@torch.no_grad()
def sample_consistency(f: ConsistencyFunction, x_T: torch.Tensor, taus: list[float], *, cond=None,
                       generator: torch.Generator | None = None, callback=None) -> torch.Tensor:
    x = f(x_T, 1.0, cond)
    if callback is not None:
        callback({"i": 0, "t": 1.0, "x": x, "denoised": x})
    for i, tau in enumerate(taus, start=1):
        alpha, _ = f.schedule.alpha_sigma_float(float(tau))
        scale = float(torch.sqrt(sigma_tilde(f.schedule, tau) ** 2 - f.sigma_min ** 2))
        x = f(alpha * (x + scale * randn_like(x, generator)), float(tau), cond)
        if callback is not None:
            callback({"i": i, "t": float(tau), "x": x, "denoised": x})
    return x


def check_taus(taus: list[float], t_min: float) -> None:
    """Algorithm 1's times: strictly decreasing, inside (t_min, 1)."""
    if any(not t_min < t < 1.0 for t in taus) or any(a <= b for a, b in zip(taus, taus[1:])):
        raise ValueError(f"re-noising times {taus} must decrease strictly inside ({t_min}, 1)")
