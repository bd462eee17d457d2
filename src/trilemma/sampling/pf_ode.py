"""The probability-flow ODE of the VP diffusion (Song et al. 2021, Eq. 13 with the VP SDE).

For x_t = alpha_t x_0 + sigma_t eps with alpha_t^2 = abar_t and g(t) = d log abar / dt,

    dx/dt = (g/2) * (x - eps_hat(x, t) / sigma_t),

which is -1/2 beta(t) [x + score * ...] of Score-SDE written with the eps-model's score
-eps_hat / sigma_t.  Integrated from the top of the chain down to index 0 (continuous t = 1e-3, the
official epsilon), then one final denoising step x0_hat (``noise_removal``), counted as an NFE.

- ``sample_pf_ode_adaptive``: ``scipy.integrate.solve_ivp`` (RK45, rtol = atol = 1e-5 as the official
  sampler); the NFE reported is the number of network evaluations, counted by the wrapper.
- ``sample_pf_ode_fixed``: Euler or Heun with N uniform steps in t (Heun: 2 NFE per step).
"""
from __future__ import annotations

import numpy as np
import torch
from scipy.integrate import solve_ivp


T_END = 0.0  # index 0: abar_1, i.e. continuous time 1/T


def pf_ode_drift(denoiser, x: torch.Tensor, t: float, cond=None) -> torch.Tensor:
    sched = denoiser.schedule
    _, eps = denoiser(x, float(t), cond)
    g = float(sched.d_log_alpha_bar(t))
    _, sigma = sched.alpha_sigma_float(float(t))
    return 0.5 * g * (x - eps / sigma)


def _denoise(denoiser, x, cond):
    x0, _ = denoiser(x, T_END, cond)
    return x0


@torch.no_grad()
def sample_pf_ode_adaptive(denoiser, x_T: torch.Tensor, *, method: str = "RK45", rtol: float = 1e-5,
                           atol: float = 1e-5, cond=None) -> torch.Tensor:
    shape, dtype, device = x_T.shape, x_T.dtype, x_T.device
    t_start = denoiser.schedule.t_max

    def rhs(t, y):
        x = torch.from_numpy(y).to(device=device, dtype=dtype).reshape(shape)
        return pf_ode_drift(denoiser, x, float(t), cond).reshape(-1).double().cpu().numpy()

    sol = solve_ivp(rhs, (t_start, T_END), x_T.reshape(-1).double().cpu().numpy(),
                    method=method.upper(), rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"probability-flow ODE solver failed: {sol.message}")
    x = torch.from_numpy(sol.y[:, -1]).to(device=device, dtype=dtype).reshape(shape)
    return _denoise(denoiser, x, cond)


@torch.no_grad()
def sample_pf_ode_fixed(denoiser, x_T: torch.Tensor, *, steps: int, solver: str = "heun",
                        cond=None) -> torch.Tensor:
    if solver not in ("euler", "heun"):
        raise ValueError(f"solver must be 'euler' or 'heun', got {solver!r}")
    ts = np.linspace(denoiser.schedule.t_max, T_END, steps + 1)
    x = x_T
    for t, s in zip(ts[:-1], ts[1:]):
        h = s - t
        d = pf_ode_drift(denoiser, x, t, cond)
        x_euler = x + h * d
        if solver == "euler":
            x = x_euler
        else:
            x = x + 0.5 * h * (d + pf_ode_drift(denoiser, x_euler, s, cond))
    return _denoise(denoiser, x, cond)
