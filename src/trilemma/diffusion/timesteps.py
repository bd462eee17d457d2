"""Timestep subsequences (0-indexed, as in the official code).

- ``ddim_uniform``: DDIM code ``range(0, T, T // S)`` (paper App. D.2, "linear").
- ``ddim_quadratic``: DDIM code ``int(linspace(0, sqrt(0.8 T), S) ** 2)``; duplicates are kept
  (they cost an NFE each, as in the official sampler).
- ``respaced``: improved-DDPM ``space_timesteps(T, "K")``: K evenly spaced real numbers over
  [0, T-1] with a fractional stride, rounded, so 0 and T-1 are always kept.

:func:`sampling_grid` turns a subsequence into the descending grid the samplers walk, ending at -1
(abar = 1, clean data).
"""
from __future__ import annotations

import math

import torch


def ddim_uniform(T: int, S: int) -> list[int]:
    if not 1 <= S <= T:
        raise ValueError(f"steps must be in [1, {T}], got {S}")
    return list(range(0, T, T // S))[:S]


def ddim_quadratic(T: int, S: int) -> list[int]:
    if not 1 <= S <= T:
        raise ValueError(f"steps must be in [1, {T}], got {S}")
    return [int(s) for s in (torch.linspace(0, math.sqrt(T * 0.8), S, dtype=torch.float64) ** 2)]


def respaced(T: int, K: int) -> list[int]:
    if not 1 <= K <= T:
        raise ValueError(f"steps must be in [1, {T}], got {K}")
    if K == 1:
        return [T - 1]
    stride = (T - 1) / (K - 1)
    return sorted({round(i * stride) for i in range(K)})


SKIPS = {"uniform": ddim_uniform, "quadratic": ddim_quadratic}


def sampling_grid(subsequence: list[int]) -> torch.Tensor:
    """Descending float64 grid [tau_{S-1}, ..., tau_0, -1]; a sampler takes one step per pair."""
    return torch.tensor(sorted(subsequence, reverse=True) + [-1], dtype=torch.float64)
