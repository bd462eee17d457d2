"""Build a network from the ``model`` section of the config (stored in every model.json)."""
from __future__ import annotations

from torch import nn

from trilemma.models.mlp import ResidualMLP


def build_model(model_cfg: dict, data_dim: int) -> nn.Module:
    kind = model_cfg["kind"]
    if kind == "mlp":
        return ResidualMLP(data_dim, model_cfg["hidden"], model_cfg["depth"], model_cfg["emb_dim"])
    if kind in ("ddgan_generator", "gan_generator"):
        from trilemma.models.gan import DDGANGenerator, GANGenerator
        m = model_cfg
        if kind == "gan_generator":
            return GANGenerator(data_dim, m["nz"], m["hidden"], m["layers"])
        return DDGANGenerator(data_dim, m["nz"], m["hidden"], m["layers"], m["emb_dim"])
    raise ValueError(f"unknown model kind {kind!r} (known: mlp, ddgan_generator, gan_generator)")
