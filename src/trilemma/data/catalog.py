"""What the DAG and config validation need to know about a dataset, without importing torch:
which datasets are images (``data/images.py`` stores and loads them), and which 2-D datasets have a
closed-form density (Gaussian mixtures: the exact denoiser of ``diffusion/oracle.py`` and the deck's
denoising study exist only for them).  ``trilemma check-config`` and ``snakemake -n`` read these;
the torch modules re-export them."""
from __future__ import annotations

from typing import Any, Mapping

IMAGE_DATASETS = ("fashion_mnist", "cifar10")
CLOSED_FORM = ("gauss25", "ring8")


def is_image_dataset(name: str) -> bool:
    return name in IMAGE_DATASETS


def is_image_profile(cfg: Mapping[str, Any]) -> bool:
    return is_image_dataset(cfg["data"]["name"])
