"""Noise schedules of the variance-preserving process q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I).

DDPM (Ho et al. 2020, Sec. 4 and Eq. 4): a discrete chain t = 1..T with linear beta_t from 1e-4 to
0.02 and abar_t = prod_{s<=t} (1 - beta_s).  As in the official code, time is 0-indexed here:
index i in {0..T-1} means abar_{i+1}, and index -1 means abar_0 = 1 (clean data).

Fractional indices (the probability-flow ODE integrates through them) interpolate log abar linearly
between neighbouring integers, so the discrete table is exact at every integer and the process stays
continuous in between.  A committed schedule name never changes meaning.

``vp_sde`` (Denoising Diffusion GAN, Xiao et al. 2022, App. B; code ``get_sigma_schedule``): the VP
SDE discretised into T steps, t_i = eps + (1 - eps) i / T (eps = 1e-3), abar(t) = exp(-1/2 (b_max -
b_min) t^2 - b_min t), beta_i = 1 - abar(t_i) / abar(t_{i-1}) for i = 1..T.  The official code
prepends a dummy beta_0 = 1e-8 so that its index 0 is (almost) clean data; here index -1 is exactly
clean data (abar = 1) and index i in {0..T-1} means abar(t_{i+1}) / abar(t_0), the same 0-indexing
as DDPM above and the same network time input as the official code (which feeds the index of x_{t+1}
as ``t``, issue NVlabs/denoising-diffusion-gan#11).  Dropping the dummy changes abar by 1e-8.

``cosine_logsnr`` (progressive distillation, Salimans & Ho 2022): continuous time t in [0, 1],
:class:`CosineLogSNRSchedule`; its students' grid is in :mod:`trilemma.diffusion.continuous`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def linear_betas(beta_start: float, beta_end: float, num_steps: int) -> torch.Tensor:
    """DDPM's linear schedule (float64): beta_t = linspace(beta_start, beta_end, T)."""
    return torch.linspace(beta_start, beta_end, num_steps, dtype=torch.float64)


def vp_sde_betas(beta_min: float, beta_max: float, num_steps: int, eps_small: float = 1e-3) -> torch.Tensor:
    """DDGAN's discretised VP SDE (float64), without the official code's dummy beta_0 = 1e-8."""
    t = eps_small + (1.0 - eps_small) * torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
    log_abar = -0.5 * (beta_max - beta_min) * t ** 2 - beta_min * t
    return -torch.expm1(log_abar[1:] - log_abar[:-1])


class VPSchedule:
    """What every VP schedule shares, derived from ``log_alpha_bar(t)`` alone (float64): the interface
    the samplers and the denoiser wrapper use.  Subclasses define ``log_alpha_bar``,
    ``d_log_alpha_bar``, ``t_min``, ``t_max`` and ``net_time`` (the time input of the network)."""

    continuous = False

    def net_time(self, t: torch.Tensor) -> torch.Tensor:
        """The network's time input at schedule time t (the index itself for discrete chains)."""
        return t

    def logsnr(self, t: torch.Tensor | float) -> torch.Tensor:
        """lambda_t = log(alpha_t^2 / sigma_t^2)."""
        log_abar = self.log_alpha_bar(t)
        return log_abar - torch.log(-torch.expm1(log_abar))

    def alpha_sigma_float(self, t: float) -> tuple[float, float]:
        """(alpha_t, sigma_t) as Python floats for one time: the samplers' per-step fast path."""
        cache = self.__dict__.setdefault("_float_cache", {})
        if t not in cache:
            alpha, sigma = self.alpha_sigma(torch.tensor(float(t), dtype=torch.float64))
            cache[t] = (float(alpha), float(sigma))
        return cache[t]

    def net_time_float(self, t: float) -> float:
        """``net_time`` at one time as a Python float (cached): the samplers' per-step fast path builds
        the network's time input from it in one operation.  Equal bit for bit to ``net_time`` of a
        batch of that time (tests/test_samplers.py)."""
        cache = self.__dict__.setdefault("_net_time_cache", {})
        if t not in cache:
            cache[t] = float(self.net_time(torch.tensor(float(t), dtype=torch.float64)))
        return cache[t]

    def alpha_sigma(self, t: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """(alpha_t, sigma_t) = (sqrt(abar_t), sqrt(1 - abar_t)), float64."""
        log_abar = self.log_alpha_bar(t)
        return (0.5 * log_abar).exp(), (-torch.expm1(log_abar)).clamp_min(0).sqrt()

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps  (DDPM Eq. 4)."""
        alpha, sigma = (_bcast(c, x0) for c in self.alpha_sigma(t))
        return alpha * x0 + sigma * eps

    def posterior(self, t: torch.Tensor | float, s: torch.Tensor | float):
        """Coefficients of q(x_s | x_t, x_0) for s < t on this chain (DDPM Eq. 6-7, on a subsequence
        as in improved-DDPM respacing): mean = c_x0 * x_0 + c_xt * x_t, variance beta_tilde, and the
        "large" variance beta' = 1 - abar_t / abar_s.  Returns (c_x0, c_xt, beta_tilde, beta')."""
        la_t, la_s = self.log_alpha_bar(t), self.log_alpha_bar(s)
        abar_t, abar_s = la_t.exp(), la_s.exp()
        beta = -torch.expm1(la_t - la_s)           # 1 - abar_t / abar_s
        alpha = 1.0 - beta
        c_x0 = abar_s.sqrt() * beta / (1.0 - abar_t)
        c_xt = alpha.sqrt() * (1.0 - abar_s) / (1.0 - abar_t)
        beta_tilde = (1.0 - abar_s) / (1.0 - abar_t) * beta
        return c_x0, c_xt, beta_tilde, beta


@dataclass
class DiscreteSchedule(VPSchedule):
    """A discrete VP schedule; every coefficient is derived from ``betas`` in float64."""

    betas: torch.Tensor  # (T,), float64

    def __post_init__(self):
        self.betas = self.betas.to(torch.float64)
        if self.betas.ndim != 1 or not bool(((self.betas > 0) & (self.betas < 1)).all()):
            raise ValueError("betas must be a 1-D tensor with values in (0, 1)")
        # log_abar_table[k] = log abar at index k - 1, k = 0..T (index -1 is abar = 1).
        self.log_abar_table = torch.cat(
            [torch.zeros(1, dtype=torch.float64), torch.cumsum(torch.log1p(-self.betas), 0)])

    @classmethod
    def from_config(cls, sched: dict) -> "DiscreteSchedule":
        if sched["name"] == "linear":
            return cls(linear_betas(sched["beta_start"], sched["beta_end"], sched["num_steps"]))
        if sched["name"] == "vp_sde":
            return cls(vp_sde_betas(sched["beta_min"], sched["beta_max"], sched["num_steps"]))
        raise ValueError(f"unknown schedule {sched['name']!r} (known: linear, vp_sde)")

    @property
    def num_steps(self) -> int:
        return self.betas.shape[0]

    @property
    def alphas_cumprod(self) -> torch.Tensor:
        """abar_t for 0-indexed t = 0..T-1."""
        return self.log_abar_table[1:].exp()

    @property
    def t_min(self) -> float:
        return -1.0

    @property
    def t_max(self) -> float:
        return float(self.num_steps - 1)

    def log_alpha_bar(self, t: torch.Tensor | float) -> torch.Tensor:
        """log abar at (possibly fractional) index t in [-1, T-1]; float64."""
        t = torch.as_tensor(t, dtype=torch.float64).clamp(-1.0, self.t_max)
        k = t + 1.0
        lo = k.floor().clamp(max=self.num_steps - 1).long()
        frac = k - lo
        table = self.log_abar_table.to(t.device)
        return table[lo] * (1 - frac) + table[lo + 1] * frac

    def d_log_alpha_bar(self, t: torch.Tensor | float) -> torch.Tensor:
        """d/dt log abar (piecewise constant: log(1 - beta) of the interval holding t)."""
        t = torch.as_tensor(t, dtype=torch.float64).clamp(-1.0, self.t_max)
        lo = (t + 1.0).floor().clamp(max=self.num_steps - 1).long()
        return torch.log1p(-self.betas.to(t.device))[lo]


@dataclass
class CosineLogSNRSchedule(VPSchedule):
    """The continuous-time cosine schedule of progressive distillation (Salimans & Ho 2022, Sec. 2 and
    the reference code ``diffusion_distillation/schedules.py``).

    logSNR lambda(t) = -2 log tan(a t + b), t in [0, 1], with b = arctan(exp(-lambda_max / 2)) and
    a = arctan(exp(-lambda_min / 2)) - b, so lambda(0) = lambda_max = 20, lambda(1) = lambda_min = -20
    and lambda(1/2) = 0: the paper's alpha_t = cos(pi t / 2) with the logSNR clipped to +-20.
    alpha_t^2 = sigmoid(lambda), sigma_t^2 = sigmoid(-lambda).

    Network time input (reference ``logsnr_input_type='inv_cos'``):
    arctan(exp(-lambda / 2)) / (pi / 2) in [0, 1], scaled by 1000 before the sinusoidal embedding as
    the reference's ``get_timestep_embedding(..., max_time=1.)`` does."""

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


def _bcast(c: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    c = c.to(like.dtype).to(like.device)
    return c.reshape(c.shape + (1,) * (like.ndim - c.ndim))


def schedule_from_config(sched: dict) -> VPSchedule:
    """The schedule a model.json names: ``linear`` (discrete DDPM chain) or ``cosine_logsnr``
    (continuous time, progressive distillation: :class:`CosineLogSNRSchedule`)."""
    if sched["name"] == "cosine_logsnr":
        return CosineLogSNRSchedule.from_config(sched)
    return DiscreteSchedule.from_config(sched)
