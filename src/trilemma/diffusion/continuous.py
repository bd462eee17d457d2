"""The continuous-time cosine schedule of progressive distillation (Salimans & Ho 2022, Sec. 2 and
the reference code ``diffusion_distillation/schedules.py``), and its parameterizations (Sec. 4).

Schedule: logSNR lambda(t) = -2 log tan(a t + b), t in [0, 1], with b = arctan(exp(-lambda_max / 2))
and a = arctan(exp(-lambda_min / 2)) - b, so lambda(0) = lambda_max = 20, lambda(1) = lambda_min = -20
and lambda(1/2) = 0: the paper's alpha_t = cos(pi t / 2) with the logSNR clipped to +-20.
alpha_t^2 = sigmoid(lambda), sigma_t^2 = sigmoid(-lambda).

Network time input (reference ``logsnr_input_type='inv_cos'``):
arctan(exp(-lambda / 2)) / (pi / 2) in [0, 1], scaled by 1000 before the sinusoidal embedding as the
reference's ``get_timestep_embedding(..., max_time=1.)`` does.

Parameterizations (Sec. 4), with z = alpha x + sigma eps and v = alpha eps - sigma x:
  x:    x_hat = net;   eps: x_hat = (z - sigma eps_hat) / alpha;   v: x_hat = alpha z - sigma v_hat;
  both: (x~, eps~) = net, x_hat = sigma^2 x~ + alpha (z - sigma eps~)   (weight sigmoid(-lambda) on x~).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from trilemma.diffusion.schedules import VPSchedule


@dataclass
class CosineLogSNRSchedule(VPSchedule):
    logsnr_min: float = -20.0
    logsnr_max: float = 20.0

    continuous = True

    def __post_init__(self):
        if not self.logsnr_min < self.logsnr_max:
            raise ValueError("logsnr_min must be smaller than logsnr_max")
        self.b = math.atan(math.exp(-0.5 * self.logsnr_max))
        self.a = math.atan(math.exp(-0.5 * self.logsnr_min)) - self.b

    @classmethod
    def from_config(cls, sched: dict) -> "CosineLogSNRSchedule":
        return cls(float(sched["logsnr_min"]), float(sched["logsnr_max"]))

    @property
    def t_min(self) -> float:
        return 0.0

    @property
    def t_max(self) -> float:
        return 1.0

    def logsnr(self, t: torch.Tensor | float) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float64).clamp(0.0, 1.0)
        return -2.0 * torch.log(torch.tan(self.a * t + self.b))

    def log_alpha_bar(self, t: torch.Tensor | float) -> torch.Tensor:
        """log alpha_t^2 = log sigmoid(lambda_t)."""
        return torch.nn.functional.logsigmoid(self.logsnr(t))

    def d_log_alpha_bar(self, t: torch.Tensor | float) -> torch.Tensor:
        """d/dt log sigmoid(lambda) = sigmoid(-lambda) * dlambda/dt, dlambda/dt = -4a / sin(2(a t + b))."""
        t = torch.as_tensor(t, dtype=torch.float64).clamp(0.0, 1.0)
        dlam = -4.0 * self.a / torch.sin(2.0 * (self.a * t + self.b))
        return torch.sigmoid(-self.logsnr(t)) * dlam

    def net_time(self, t: torch.Tensor) -> torch.Tensor:
        """1000 * inv_cos(lambda_t) = 1000 * arctan(exp(-lambda/2)) / (pi/2)."""
        lam = self.logsnr(t).clamp(-20.0, 20.0)
        return 1000.0 * torch.atan(torch.exp(-0.5 * lam)) / (0.5 * math.pi)


def uniform_grid(steps: int) -> torch.Tensor:
    """The N-step grid t_i = i / N, descending from 1 to 0 (Algorithm 2's student grid)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
