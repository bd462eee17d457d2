"""Sinusoidal time embedding (Vaswani et al. 2017), as DDPM feeds t to its network (Ho et al. 2020,
App. B: "diffusion time t is specified by adding the Transformer sinusoidal position embedding")."""
from __future__ import annotations

import math

import torch


def sinusoidal_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) float times -> (B, dim) [cos | sin] features; works for fractional t."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)
