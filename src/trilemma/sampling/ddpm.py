"""DDPM ancestral sampling (Ho et al. 2020, Alg. 2), with improved-DDPM respacing for fewer steps.

Each step draws x_s ~ N(mu_tilde(x_t, x0_hat), sigma^2 I) with the posterior of DDPM Eq. 7 taken on
the kept subsequence (Nichol & Dhariwal 2021: beta'_i = 1 - abar_{s_i} / abar_{s_{i-1}}), and
sigma^2 = beta' ("fixedlarge", sigma^2 = beta) or beta_tilde' ("fixedsmall").  As in the official
code x0_hat may be clipped before the posterior mean; no noise is added at the last step.

``v`` (instead of ``variance``) gives the stochastic sampler of progressive distillation (Salimans &
Ho 2022, Sec. 5 / App.): the same posterior mean with variance (sigma~^2_{s|t})^(1-v) (sigma^2_{t|s})^v,
i.e. beta_tilde'^(1-v) beta'^v (improved DDPM's log-variance interpolation with a fixed v).
"""
from __future__ import annotations

import torch

from trilemma.sampling.common import randn_like

VARIANCES = ("beta", "beta_tilde")


@torch.no_grad()
def sample_ddpm(denoiser, x_T: torch.Tensor, ts: torch.Tensor, *, variance: str = "beta",
                clip_x0: tuple[float, float] | None = None, cond=None,
                generator: torch.Generator | None = None, v: float | None = None, callback=None) -> torch.Tensor:
    """Walk the descending grid ``ts`` (ending at -1) from ``x_T``; ``callback({i, t, x, denoised})``
    after each step."""
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    x = x_T
    n = len(ts) - 1
    for i in range(n):
        c_x0, c_xt, beta_tilde, beta = (float(c) for c in denoiser.schedule.posterior(ts[i], ts[i + 1]))
        x0, _ = denoiser(x, float(ts[i]), cond)
        if clip_x0 is not None:
            x0 = x0.clamp(*clip_x0)
        x = c_x0 * x0 + c_xt * x
        if i < n - 1:
            var = beta if variance == "beta" else beta_tilde
            if v is not None:
                var = beta_tilde ** (1 - v) * beta ** v
            x = x + var ** 0.5 * randn_like(x, generator)
        if callback is not None:
            callback({"i": i, "t": float(ts[i]), "x": x, "denoised": x0})
    return x
