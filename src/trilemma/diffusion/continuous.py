"""Continuous time in progressive distillation (Salimans & Ho 2022): the students' uniform grid; and
the parameterizations (Sec. 4) the denoiser applies on it.  The cosine logSNR schedule itself, :class:`CosineLogSNRSchedule`,
is defined with the other VP schedules in :mod:`trilemma.diffusion.schedules` (so that
``schedule_from_config`` builds every schedule without importing this module) and re-exported here.

Parameterizations (Sec. 4), with z = alpha x + sigma eps and v = alpha eps - sigma x:
  x:    x_hat = net;   eps: x_hat = (z - sigma eps_hat) / alpha;   v: x_hat = alpha z - sigma v_hat;
  both: (x~, eps~) = net, x_hat = sigma^2 x~ + alpha (z - sigma eps~)   (weight sigmoid(-lambda) on x~).
"""
from __future__ import annotations

import torch

from trilemma.diffusion.schedules import CosineLogSNRSchedule  # noqa: F401  (re-exported)


def uniform_grid(steps: int) -> torch.Tensor:
    """The N-step grid t_i = i / N, descending from 1 to 0 (Algorithm 2's student grid)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
