"""The denoiser contract every sampler sees: ``denoiser(x_t, t, cond) -> (x0_hat, eps_hat)``.

Whatever a network predicts (eps as in DDPM Eq. 11, x or v as in progressive distillation Sec. 4),
the wrapper converts it with x_t = alpha_t x_0 + sigma_t eps, so one sampler serves every teacher
and student (the adapter pattern of k-diffusion and EDM's preconditioning).  ``t`` is in the
schedule's own time (0-indexed discrete index for DDPM-style chains).
"""
from __future__ import annotations

import torch
from torch import nn

from trilemma.diffusion.schedules import _bcast

PARAMETERIZATIONS = ("eps", "x", "v", "both")
OUTPUTS = {"eps": 1, "x": 1, "v": 1, "both": 2}   # network outputs per data dimension


class Denoiser(nn.Module):
    def __init__(self, net: nn.Module, schedule, parameterization: str = "eps"):
        super().__init__()
        if parameterization not in PARAMETERIZATIONS:
            raise ValueError(f"parameterization must be one of {PARAMETERIZATIONS}, got {parameterization!r}")
        self.net, self.schedule, self.parameterization = net, schedule, parameterization

    def forward(self, x_t: torch.Tensor, t, cond=None):
        """``t``: one time for the whole batch (a float or 0-d tensor: the samplers' fast path, with
        Python-float coefficients) or one time per sample (a 1-d tensor)."""
        if isinstance(t, float) or (torch.is_tensor(t) and t.ndim == 0):
            t = float(t)
            alpha, sigma = self.schedule.alpha_sigma_float(t)
            t_in = torch.full((x_t.shape[0],), self.schedule.net_time_float(t), dtype=x_t.dtype, device=x_t.device)
        else:
            t = torch.as_tensor(t, device=x_t.device)
            alpha, sigma = (_bcast(c, x_t) for c in self.schedule.alpha_sigma(t))
            t_in = self.schedule.net_time(t).to(x_t.dtype)
        out = self._net(x_t, t_in, cond)
        return convert(out, x_t, alpha, sigma, self.parameterization)

    def _net(self, x_t: torch.Tensor, t_in: torch.Tensor, cond):
        """The network's output; without autograd, in slices of :data:`ROWS_PER_CALL` rows (the same
        values: each row's output depends on that row alone; tests/test_samplers.py)."""
        n = x_t.shape[0]
        if n <= ROWS_PER_CALL or torch.is_grad_enabled():
            return self.net(x_t, t_in, cond) if cond is not None else self.net(x_t, t_in)
        return torch.cat([self._net(x_t[i:i + ROWS_PER_CALL], t_in[i:i + ROWS_PER_CALL], _rows(cond, n, i))
                          for i in range(0, n, ROWS_PER_CALL)])


# A sample bank runs the network on slices of this many rows.  Activations of a 10,000-row batch (the
# toy's banks: 10,000 x 128 floats, 5 MiB) overflow the cores' L2 caches, and the element-wise kernels
# (SiLU, the residual adds, addmm's bias copy) then run at memory speed: the toy MLP's forward pass
# alone over 10,000 rows took 17.2 ms in one call and 12.2 ms in slices of 1,000 (Intel Xeon, one
# thread, 2026-12-03).  The noise and the update still use the whole batch.
ROWS_PER_CALL = 1024


def _rows(cond, n: int, i: int):
    """``cond`` (a dict of them, a tensor such as DDGAN's latent z, or None) for rows ``i:i +
    ROWS_PER_CALL``: per-row tensors sliced, anything else as it is."""
    if isinstance(cond, dict):
        return {k: _rows(v, n, i) for k, v in cond.items()}
    if torch.is_tensor(cond) and cond.ndim and cond.shape[0] == n:
        return cond[i:i + ROWS_PER_CALL]
    return cond


def convert(out, x_t, alpha, sigma, parameterization):
    """(x0_hat, eps_hat) from a network output of the given parameterization."""
    if parameterization == "eps":
        eps = out
        x0 = torch.sub(x_t, eps, alpha=sigma).div_(alpha) if isinstance(sigma, float) else (x_t - sigma * eps) / alpha
    elif parameterization == "x":
        x0 = out
        eps = (x_t - alpha * x0) / sigma
    elif parameterization == "v":  # v = alpha * eps - sigma * x0
        x0 = alpha * x_t - sigma * out
        eps = sigma * x_t + alpha * out
    else:  # both (x~, eps~), mixed with weight sigma^2 on x~ (progressive distillation Sec. 4)
        x_tilde, eps_tilde = out.chunk(2, dim=1)
        x0 = sigma ** 2 * x_tilde + alpha * (x_t - sigma * eps_tilde)
        eps = (x_t - alpha * x0) / sigma
    return x0, eps
