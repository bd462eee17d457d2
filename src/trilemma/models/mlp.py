"""A residual MLP denoiser for 2-D data: the toy network of the DDGAN paper's 25-Gaussians figure is
an MLP too (App. C.5).  Time enters as a sinusoidal embedding added in every block, as in DDPM's
U-Net res blocks.

Conditioning travels in the denoiser contract's ``cond`` (a dict) and is *added to the time
embedding*, as ADM adds its class embedding (Dhariwal & Nichol 2021) and as Meng et al. (2023, Sec.
4.1) feed w "in a way similar to how the time step is incorporated":

- ``num_classes > 0``: a label embedding ``cond["y"]`` with one extra row, the null label
  ``num_classes`` (classifier-free guidance's c = ∅, Ho & Salimans 2022, Alg. 1); no ``cond`` means
  the null label.
- ``w_emb_dim > 0``: the guidance strength ``cond["w"]`` through a Fourier (sinusoidal) embedding of
  ``W_SCALE * w`` and a two-layer MLP whose last layer starts at zero, so a student initialised from
  its teacher's weights equals the teacher's *conditional* model at initialisation (our choice: the
  paper says only that the new w parameters are new; diffusers' LCM scales w by 1000 likewise).
"""
from __future__ import annotations

import torch
from torch import nn

from trilemma.models.embedding import sinusoidal_embedding

W_SCALE = 1000.0 / 4.0   # w in [0, 4] spans the time embedding's range [0, 1000]


class ResidualMLP(nn.Module):
    def __init__(self, data_dim: int = 2, hidden: int = 128, depth: int = 3, emb_dim: int = 64,
                 out_dim: int | None = None, num_classes: int = 0, w_emb_dim: int = 0):
        super().__init__()
        self.emb_dim, self.num_classes, self.w_emb_dim = emb_dim, num_classes, w_emb_dim
        self.inp = nn.Linear(data_dim, hidden)
        self.temb = nn.Sequential(nn.Linear(emb_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.time_proj = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(depth))
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, out_dim or data_dim))
        nn.init.zeros_(self.out[1].weight)
        nn.init.zeros_(self.out[1].bias)
        if num_classes:
            self.label_emb = nn.Embedding(num_classes + 1, hidden)   # row num_classes = the null label
        if w_emb_dim:
            self.w_emb = nn.Sequential(nn.Linear(w_emb_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
            nn.init.zeros_(self.w_emb[2].weight)
            nn.init.zeros_(self.w_emb[2].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: dict | None = None) -> torch.Tensor:
        if t.ndim == 1 and t.shape[0] > 1 and bool((t[1:] == t[0]).all()):
            t = t[:1]   # one time for the whole batch (every sampler step): embed it once, broadcast
        emb = self.temb(sinusoidal_embedding(t, self.emb_dim))
        if self.num_classes:
            y = cond.get("y") if cond else None
            if y is None:
                y = torch.full((emb.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            emb = emb + self.label_emb(y)
        if self.w_emb_dim:
            w = torch.as_tensor(cond["w"], dtype=torch.float32, device=x.device).reshape(-1)
            emb = emb + self.w_emb(sinusoidal_embedding(W_SCALE * w, self.w_emb_dim))
        inplace = not torch.is_grad_enabled()   # sampling: no activation is kept for a backward pass
        h = self.inp(x)
        for block, proj in zip(self.blocks, self.time_proj):
            h = block(torch.nn.functional.silu(h + proj(emb), inplace=inplace)).add_(h)
        return self.out(h)
