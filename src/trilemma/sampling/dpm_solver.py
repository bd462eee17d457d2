"""DPM-Solver++(2M) (Lu, Zhou, Bao, Chen, Li & Zhu 2022, arXiv 2211.01095, Algorithm 2; methods.md §13.2):
the multistep second-order solver of the probability-flow ODE in data prediction x_theta = x0_hat.

With lambda_t = log(alpha_t / sigma_t) and h_i = lambda_{t_i} - lambda_{t_{i-1}} on a descending grid:

    first step (DDIM):  x_i = (sigma_i / sigma_{i-1}) x_{i-1} - alpha_i (e^{-h_i} - 1) x_theta(x_{i-1}, t_{i-1})
    later steps:        r_i = h_{i-1} / h_i,
                        D_i = (1 + 1 / (2 r_i)) x_theta(x_{i-1}, t_{i-1}) - 1 / (2 r_i) x_theta(x_{i-2}, t_{i-2}),
                        x_i = (sigma_i / sigma_{i-1}) x_{i-1} - alpha_i (e^{-h_i} - 1) D_i.

One NFE per step.  The grid and the last step follow diffusers' ``DPMSolverMultistepScheduler``
(``algorithm_type="dpmsolver++"``, ``solver_order=2``, ``solver_type="midpoint"``, ``timestep_spacing=
"linspace"``, ``final_sigmas_type="zero"``, ``lower_order_final=True``): N times round(linspace(0, T-1,
N+1)) from T-1 down (t = 0 dropped), then one step to t = -1 (sigma = 0), taken at first order, which
returns x_theta of the last evaluation.  ``tests/test_dpm_solver.py`` holds the trajectories against it.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from trilemma.config import ConfigError


def linspace_timesteps(T: int, steps: int) -> list[int]:
    """diffusers' ``timestep_spacing="linspace"``: round(linspace(0, T-1, N+1)) descending, 0 dropped."""
    if not 1 <= steps < T:
        raise ValueError(f"steps must be in [1, {T - 1}], got {steps}")
    return np.linspace(0, T - 1, steps + 1).round()[::-1][:-1].astype(np.int64).tolist()


def dpm_solver_grid(T: int, steps: int) -> torch.Tensor:
    """The descending float64 grid [t_N, ..., t_1, -1] the sampler walks (-1: abar = 1, sigma = 0)."""
    return torch.tensor(linspace_timesteps(T, steps) + [-1], dtype=torch.float64)


@torch.no_grad()
def sample_dpm_solver_2m(denoiser, x_T: torch.Tensor, ts: torch.Tensor, *, cond=None,
                         generator: torch.Generator | None = None, callback=None) -> torch.Tensor:
    """Walk the descending grid ``ts`` from ``x_T``; ``callback({i, t, x, denoised})`` after each step.
    Deterministic (``generator`` unused: the signature every sampler shares)."""
    sched = denoiser.schedule
    times = [float(t) for t in ts]
    x, x0_prev, h_prev = x_T, None, None
    for i, (t, s) in enumerate(zip(times[:-1], times[1:])):
        x0, _ = denoiser(x, t, cond)
        a_s, sigma_s = sched.alpha_sigma_float(s)
        if sigma_s == 0.0:          # the step to the data: first order with sigma_s = 0 gives x_theta
            x, h = x0, None
        else:
            a_t, sigma_t = sched.alpha_sigma_float(t)
            h = math.log(a_s / sigma_s) - math.log(a_t / sigma_t)
            D = x0
            if x0_prev is not None:
                r = h_prev / h
                D = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
            x = (sigma_s / sigma_t) * x - (a_s * math.expm1(-h)) * D
        if callback is not None:
            callback({"i": i, "t": t, "x": x, "denoised": x0})
        x0_prev, h_prev = x0, h
    return x


def build(spec, denoiser, cfg, info=None, classifier=None):
    """The registry's builder: DPM-Solver++(2M) with ``spec.steps`` NFE on a discrete-time model."""
    if denoiser.schedule.continuous:
        raise ConfigError(f"sampler spec {spec.spec!r} is defined for a discrete-time model (the DDPM teacher)")
    ts = dpm_solver_grid(denoiser.schedule.num_steps, spec.steps)
    return lambda x, *, cond=None, generator=None, callback=None: sample_dpm_solver_2m(
        denoiser, x, ts, cond=cond, generator=generator, callback=callback)
