"""One-shot GAN sampling (Goodfellow et al. 2014; WGAN-GP, Gulrajani et al. 2017): x = G(z), z ~ N(0, I),
one network evaluation per sample, through the denoiser contract (:class:`trilemma.models.gan.OneShot`).
G outputs points in the units it was trained in (``stages.train_gan.data_units``); the samples are
returned divided by ``units``, in data coordinates."""
from __future__ import annotations

import torch


@torch.no_grad()
def sample_gan(denoiser, num: int, *, latent_dim: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu", units: float = 1.0) -> torch.Tensor:
    z = torch.randn((num, latent_dim), generator=generator, device=device)
    x0, _ = denoiser(z, None)
    return x0 / units
