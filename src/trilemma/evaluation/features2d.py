"""The feature space of the toy's headline distance: random Fourier features at the data's own scale.

FID separates images because Inception features separate them; on 2-D points the raw coordinates do
not (methods.md §13.1): a Fréchet distance on coordinates compares means and covariances only, so a
single Gaussian with the data's first two moments beats a trained DDPM.  A fixed random Fourier map
(Rahimi & Recht 2007, "Random features for large-scale kernel machines", Eq. 2 / Algorithm 1)

    φ(x) = sqrt(2 / D) cos(W x / ℓ + b),   W ~ N(0, I_{D×2}),  b ~ U[0, 2π)^D,

approximates the Gaussian kernel of width ℓ, so the Fréchet distance between the feature sets compares
the samples' kernel mean embeddings (an MMD at scale ℓ) and their second moments.  ℓ is tied to the
dataset's local scale (the mode std of a mixture, the noise of the swiss roll): ``bandwidth`` × scale.
The map is seeded and built in float64 on the CPU, so two processes give bitwise-equal features.
The Fréchet formula itself stays torch-fidelity's (``trilemma.evaluation.fidelity``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


def local_scale(dataset: str, params: dict) -> float:
    """The length scale that the toy's metrics resolve: a mixture's mode std, the swiss roll's noise."""
    if dataset == "swissroll":
        return float(params["noise"])
    return float(params["std"])


@dataclass(frozen=True)
class FourierFeatures:
    seed: int
    width: int          # D
    lengthscale: float  # ℓ, in data units

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed)
        w = torch.randn(x.shape[1], self.width, generator=g, dtype=torch.float64) / self.lengthscale
        b = torch.rand(self.width, generator=g, dtype=torch.float64) * (2 * math.pi)
        return math.sqrt(2.0 / self.width) * torch.cos(x.detach().double().cpu() @ w + b)

    @property
    def name(self) -> str:
        return f"random Fourier features (seed {self.seed}, D = {self.width}, ℓ = {self.lengthscale:g})"


def toy_features(features_cfg, dataset: str, params: dict) -> FourierFeatures:
    """The profile's feature map (the typed ``evaluation.features``: seed, width, bandwidth in local scales)."""
    return FourierFeatures(seed=features_cfg.seed, width=features_cfg.width,
                           lengthscale=float(features_cfg.bandwidth) * local_scale(dataset, params))
