"""A residual MLP denoiser for 2-D data: the toy network of the DDGAN paper's 25-Gaussians figure is
an MLP too (App. C.5).  Time enters as a sinusoidal embedding added in every block, as in DDPM's
U-Net res blocks."""
from __future__ import annotations

import torch
from torch import nn

from trilemma.models.embedding import sinusoidal_embedding


class ResidualMLP(nn.Module):
    def __init__(self, data_dim: int = 2, hidden: int = 128, depth: int = 3, emb_dim: int = 64,
                 out_dim: int | None = None):
        super().__init__()
        self.emb_dim = emb_dim
        self.inp = nn.Linear(data_dim, hidden)
        self.temb = nn.Sequential(nn.Linear(emb_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.time_proj = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, out_dim or data_dim))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.temb(sinusoidal_embedding(t, self.emb_dim))
        h = self.inp(x)
        for block, proj in zip(self.blocks, self.time_proj):
            h = h + block(torch.nn.functional.silu(h + proj(emb)))
        return self.out(h)
