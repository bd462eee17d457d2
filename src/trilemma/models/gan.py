"""Fully connected networks of the 25-Gaussians experiment of the Denoising Diffusion GAN paper
(Xiao, Kreis & Vahdat 2022, Fig. 6 and App. C.5: generator and discriminator are each a few fully
connected layers), for DDGAN and for the GAN baselines, so that every method has networks of the
same size.

- DDGAN generator G(x_t, z, t) -> x0' (the paper's parameterisation, Sec. 3.2): [x_t, z] in, x0 out.
- DDGAN discriminator D(x_{t-1}, x_t, t) -> logit: the two points concatenated (the official
  code concatenates along channels).
- Time enters as a sinusoidal embedding projected and added to every hidden layer (the official
  networks use a positional embedding through an MLP).  The official NCSN++ generator maps z through
  a mapping network into AdaGN layers; for 2-D data z is simply concatenated to the input.  The
  official generator ends in tanh for images in [-1, 1]; 2-D data are unbounded, so the output is
  linear here.
- Activations: ReLU in the generators (a piecewise-constant-capable map that can squeeze latent
  regions onto tight modes), LeakyReLU(0.2) in the discriminators, as in the official DDGAN D.
- GAN / WGAN-GP baselines: the same network without time, G(z) and D(x).
- Every discriminator may see its input through a Fourier encoding (config ``ddgan.model.d_fourier``
  octaves; not in the paper or the official code, whose D are conv nets on images): a plain FC D on
  2-D points learns the 0.05-wide modes too slowly for a short run (spectral bias, Tancik et al. 2020)
  and so never pushes G to sharpen them.  The DDGAN generator may take the same encoding
  (``ddgan.model.g_fourier``, see :class:`DDGANGenerator`); the baselines' generators keep the plain input.
"""
from __future__ import annotations

import torch
from torch import nn

from trilemma.models.embedding import sinusoidal_embedding


def fourier_features(x: torch.Tensor, octaves: int) -> torch.Tensor:
    """[x, sin(2^k x), cos(2^k x)] for k < ``octaves`` (NeRF's positional encoding, Mildenhall et al.
    2020, with base frequency 1 rad per unit, so the periods 2 pi, pi, pi / 2, ... are not tuned to
    any grid spacing)."""
    if not octaves:
        return x
    a = (x[..., None] * (2.0 ** torch.arange(octaves, device=x.device, dtype=x.dtype))).flatten(1)
    return torch.cat([x, a.sin(), a.cos()], dim=1)


class FCNet(nn.Module):
    """``layers`` fully connected layers of width ``hidden`` with LeakyReLU(0.2); optional time input;
    optional Fourier encoding of the input (``fourier`` octaves, see :func:`fourier_features`)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int, layers: int, emb_dim: int = 0,
                 act: str = "leaky_relu", fourier: int = 0):
        super().__init__()
        self.fourier = fourier
        dims = [in_dim * (1 + 2 * fourier)] + [hidden] * (layers - 1)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(dims[-1], out_dim)
        self.emb_dim = emb_dim
        if emb_dim:
            self.temb = nn.Sequential(nn.Linear(emb_dim, hidden), nn.LeakyReLU(0.2))
            self.time_proj = nn.ModuleList(nn.Linear(hidden, hidden) for _ in self.hidden)
        self.act = nn.ReLU() if act == "relu" else nn.LeakyReLU(0.2)

    def forward(self, h: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.temb(sinusoidal_embedding(t, self.emb_dim)) if self.emb_dim else None
        h = fourier_features(h, self.fourier)
        for i, layer in enumerate(self.hidden):
            h = layer(h)
            if emb is not None:
                h = h + self.time_proj[i](emb)
            h = self.act(h)
        return self.out(h)


class DDGANGenerator(nn.Module):
    """G(x_t, t, z) -> x0'; called through the denoiser contract with the latent z as ``cond``.

    ``fourier`` > 0 feeds G its input [x_t, z] through the same Fourier encoding as the discriminators
    (config ``ddgan.model.g_fourier``; not in the paper or the official code).  The last step
    G(x_1, z, 0) must fold z onto a mixture of about 9 modes of std 0.05 (x_1 = 0.72 x0 + 0.69 noise at
    T = 4); a plain ReLU MLP learns this staircase too slowly (spectral bias again, Tancik et al. 2020):
    it stays a near-linear map of z whose only plateaus are the grid's edges, so the outer 16 modes
    come out sharp and the inner 9 are swept over, never formed."""

    def __init__(self, data_dim: int, nz: int, hidden: int, layers: int, emb_dim: int, fourier: int = 0):
        super().__init__()
        self.nz = nz
        self.net = FCNet(data_dim + nz, data_dim, hidden, layers, emb_dim, act="relu", fourier=fourier)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x_t, z], dim=1), t)


class DDGANDiscriminator(nn.Module):
    """D(x_{t-1}, x_t, t) -> logit, time-conditioned."""

    def __init__(self, data_dim: int, hidden: int, layers: int, emb_dim: int, fourier: int = 0):
        super().__init__()
        self.net = FCNet(2 * data_dim, 1, hidden, layers, emb_dim, fourier=fourier)

    def forward(self, x_prev: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x_prev, x_t], dim=1), t).squeeze(1)


class GANGenerator(nn.Module):
    """The one-shot generator of the GAN baselines: G(z) -> x."""

    def __init__(self, data_dim: int, nz: int, hidden: int, layers: int):
        super().__init__()
        self.nz = nz
        self.net = FCNet(nz, data_dim, hidden, layers, act="relu")

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class GANDiscriminator(nn.Module):
    """D(x) -> logit (GAN) or critic value (WGAN-GP)."""

    def __init__(self, data_dim: int, hidden: int, layers: int, fourier: int = 0):
        super().__init__()
        self.net = FCNet(data_dim, 1, hidden, layers, fourier=fourier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


class OneShot(nn.Module):
    """A one-shot generator seen through the denoiser contract: one evaluation maps pure noise z
    (at the end of the chain) to x0, ``denoiser(z, t, cond) -> (G(z), None)``; no eps is defined."""

    def __init__(self, generator: GANGenerator):
        super().__init__()
        self.net = generator

    @property
    def latent_dim(self) -> int:
        return self.net.nz

    def forward(self, z: torch.Tensor, t=None, cond=None):
        return self.net(z), None
