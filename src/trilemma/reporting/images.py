"""The image profiles' sample figure: one grid of uint8 images per panel (real data first), in the
layout of the papers' sample figures (DDPM Fig. 1, DDGAN Fig. 1), byte-stable like every figure."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from trilemma.reporting.figures import SAVE  # noqa: E402


def tile(images: torch.Tensor, nrow: int | None = None, pad: int = 1) -> torch.Tensor:
    """uint8 (N, C, H, W) -> one uint8 (H', W', C) mosaic with ``pad`` white pixels between images."""
    n, c, h, w = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    ncol = math.ceil(n / nrow)
    out = torch.full((c, ncol * (h + pad) + pad, nrow * (w + pad) + pad), 255, dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, nrow)
        out[:, pad + r * (h + pad):pad + r * (h + pad) + h, pad + k * (w + pad):pad + k * (w + pad) + w] = images[i]
    return out.permute(1, 2, 0)


def image_grid(panels: list[tuple[str, torch.Tensor]], path, *, dpi: int) -> None:
    """``panels``: (title, uint8 (N, C, H, W)) pairs; grey images are drawn in grey."""
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(2.4 * n, 2.7), squeeze=False)
    for ax, (title, images) in zip(axes[0], panels):
        mosaic = tile(images).numpy()
        if mosaic.shape[-1] == 1:
            ax.imshow(mosaic[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(mosaic, interpolation="nearest")
        ax.set(xticks=[], yticks=[])
        ax.set_title(title, fontsize=7)
    fig.savefig(path, dpi=dpi, **SAVE)
    plt.close(fig)
