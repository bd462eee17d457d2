"""Build a network from the ``model`` section of the config (stored in every model.json)."""
from __future__ import annotations

from torch import nn


def build_model(model_cfg: dict, data_dim, out_dim: int | None = None) -> nn.Module:
    """``out_dim`` defaults to ``data_dim`` (twice it for the (x, eps) "both" parameterization).
    An MLP's ``num_classes`` / ``w_emb_dim`` (label and guidance-strength conditioning) are written
    into model.json by the stage that trains it, not set in the config."""
    kind = model_cfg["kind"]
    if kind == "mlp":   # each kind's module imported when built: a job depends on its own networks' code
        from trilemma.models.mlp import ResidualMLP
        return ResidualMLP(data_dim, model_cfg["hidden"], model_cfg["depth"], model_cfg["emb_dim"], out_dim,
                           num_classes=model_cfg.get("num_classes", 0), w_emb_dim=model_cfg.get("w_emb_dim", 0))
    if kind in ("ddgan_generator", "gan_generator"):
        from trilemma.models.gan import DDGANGenerator, GANGenerator
        m = model_cfg
        if kind == "gan_generator":
            return GANGenerator(data_dim, m["nz"], m["hidden"], m["layers"])
        return DDGANGenerator(data_dim, m["nz"], m["hidden"], m["layers"], m["emb_dim"], m.get("g_fourier", 0))
    if kind == "unet" and model_cfg.get("arch") == "ddgan_generator":   # DDGAN's image generator (model.json)
        from trilemma.models.ddgan_images import build_generator
        return build_generator(model_cfg, data_dim)
    if kind == "unet":
        from trilemma.models.unet import build_unet
        return build_unet(model_cfg, data_dim)
    raise ValueError(f"unknown model kind {kind!r} (known: mlp, unet, ddgan_generator, gan_generator)")
