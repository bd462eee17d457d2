"""Interpolating latents x_T (DDIM, Song et al. 2021, Sec. 5.3 and Fig. 6; the slerp of White 2016,
"Sampling generative networks"):

    slerp(z_0, z_1; a) = sin((1 - a) theta) / sin(theta) z_0 + sin(a theta) / sin(theta) z_1,
    theta = arccos(z_0 . z_1 / (|z_0| |z_1|)),

which, for |z_0| = |z_1|, keeps the norm on the sphere the Gaussian's mass concentrates on (|z|^2 ~ chi^2_d,
mean d).  Linear interpolation (1 - a) z_0 + a z_1 cuts through the ball: for independent z_0, z_1 the
midpoint has E|z|^2 = d / 2, off the shell.
"""
from __future__ import annotations

import torch


def lerp(z0: torch.Tensor, z1: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """(len(a), *z0.shape): (1 - a) z_0 + a z_1 for every a."""
    a = a.reshape(-1, *([1] * z0.ndim)).to(z0.dtype)
    return (1 - a) * z0 + a * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """(len(a), *z0.shape): spherical interpolation along the last dimension (one pair per row of a batch).

    The direction follows the great circle from z_0 / |z_0| to z_1 / |z_1| and the norm goes linearly
    from |z_0| to |z_1|: White's formula above when |z_0| = |z_1|.  With unequal norms White's formula
    leaves the shell for nearly antipodal pairs (its norm at a = 1/2 is |z_0 + z_1| / (2 cos(theta / 2)),
    unbounded as theta -> pi, which random pairs reach in d = 2); this form stays between the two norms."""
    r0, r1 = z0.norm(dim=-1, keepdim=True), z1.norm(dim=-1, keepdim=True)
    u0, u1 = z0 / r0, z1 / r1
    theta = torch.arccos((u0 * u1).sum(-1, keepdim=True).clamp(-1.0, 1.0))
    a = a.reshape(-1, *([1] * z0.ndim)).to(z0.dtype)
    sin = torch.sin(theta)
    safe = sin.abs() > 1e-6
    chord = (1 - a) * u0 + a * u1                      # (anti-)parallel pairs: the normalised chord
    arc = (torch.sin((1 - a) * theta) * u0 + torch.sin(a * theta) * u1) / torch.where(safe, sin, 1.0)
    direction = torch.where(safe, arc, chord / chord.norm(dim=-1, keepdim=True).clamp_min(1e-12))
    return ((1 - a) * r0 + a * r1) * direction
