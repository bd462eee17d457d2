"""Image data shared by the image profiles: uint8 (N, C, H, W) storage, the [-1, 1] scaling of DDPM
(Ho et al. 2020, Sec. 3.3: "data consists of integers in {0, ..., 255} scaled linearly to [-1, 1]"),
the quantisation back to uint8 that the metrics see (round, then clamp: no per-image rescaling), the
centre crop the tiny test profile uses, and the area-averaging downsampling of the small CPU profile."""
from __future__ import annotations


import torch

from trilemma.data.catalog import IMAGE_DATASETS, is_image_dataset, is_image_profile  # noqa: F401  (torch-free home)

CLASS_NAMES = {
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}


class DataSourceError(RuntimeError):
    """A dataset source file is missing or corrupted; the message says which file to put where."""


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 {0..255} -> float32 [-1, 1]."""
    return x.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float [-1, 1] -> uint8, ((x + 1) * 127.5).round().clamp(0, 255), as torch-fidelity expects."""
    return ((x.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)


def center_crop(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Centre ``size`` x ``size`` crop of (N, C, H, W) images; ``None`` keeps them whole."""
    if size is None:
        return x
    h, w = x.shape[-2:]
    if size > min(h, w):
        raise ValueError(f"crop {size} is larger than the images ({h}x{w})")
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top:top + size, left:left + size].contiguous()


def area_resize(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """uint8 (N, C, H, W) images averaged over areas to ``size`` x ``size`` (each output pixel is the mean
    of the input pixels its footprint covers, weighted by the covered fraction: ``F.interpolate(mode=
    "area")``, i.e. adaptive average pooling), rounded back to uint8; ``None`` keeps them as they are."""
    if size is None:
        return x
    if size > min(x.shape[-2:]):
        raise ValueError(f"resize {size} is larger than the images ({tuple(x.shape[-2:])})")
    out = torch.nn.functional.interpolate(x.double(), size=(size, size), mode="area")
    return out.round().clamp(0, 255).to(torch.uint8)


def build_dataset(name: str, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                  data_cfg, source: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """The dataset artifact of the typed ``data`` section: the first ``num_train`` / ``num_eval``
    images of each split, cropped, then resized by area averaging (``data.image``)."""
    crop, size = (data_cfg.image.crop, data_cfg.image.resize) if data_cfg.image else (None, None)

    def prepare(x):
        return area_resize(center_crop(x, crop), size)

    (xtr, ytr), (xte, yte) = train, test
    n_tr, n_te = min(data_cfg.num_train, len(xtr)), min(data_cfg.num_eval, len(xte))
    tensors = {"train": prepare(xtr[:n_tr]), "train_labels": ytr[:n_tr].long(),
               "eval": prepare(xte[:n_te]), "eval_labels": yte[:n_te].long()}
    c, h, w = tensors["train"].shape[1:]
    meta = {"kind": "dataset", "dataset": name, "data_dim": [c, h, w], "image": True,
            "num_classes": len(CLASS_NAMES[name]), "class_names": list(CLASS_NAMES[name]),
            "crop": crop, "resize": size, "source": source, "std": None}
    return tensors, meta


def training_batch(x: torch.Tensor, generator: torch.Generator, hflip: bool = False) -> torch.Tensor:
    """A drawn batch ready for training: uint8 scaled to [-1, 1], then (optionally) each image flipped
    left-right with probability 1/2 (DDPM, App. B: random horizontal flips for CIFAR-10)."""
    if x.dtype == torch.uint8:
        x = to_float(x)
    if hflip:
        flip = torch.rand(x.shape[0], generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x
