"""What every sampler shares: NFE counting by wrapping the network, and per-call noise."""
from __future__ import annotations

import torch
from torch import nn


class CountNFE(nn.Module):
    """Wraps a denoiser and counts its evaluations (one per call, whatever the batch size)."""

    def __init__(self, denoiser):
        super().__init__()
        self.denoiser = denoiser
        self.nfe = 0

    @property
    def schedule(self):
        return self.denoiser.schedule

    def forward(self, x_t, t, cond=None):
        self.nfe += 1
        return self.denoiser(x_t, t, cond)


def randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def full_t(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A (B,) float64 time vector: a scalar t repeated, or a per-example (B,) vector kept as is."""
    t = torch.as_tensor(t, dtype=torch.float64, device=x.device)
    return t.expand(x.shape[0]).clone() if t.ndim == 0 else t
