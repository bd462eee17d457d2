"""The 2-D datasets, generated deterministically from the config's seed.

- ``gauss25``: 25 isotropic Gaussians on a 5x5 grid, means {-2..2} * spacing (DDGAN Fig. 6, after
  VEEGAN/PacGAN); the class label is the grid row, so guidance has something to trade.
- ``ring8``: 8 Gaussians on a circle (Metz et al. 2017).
- ``swissroll``: the swiss roll of Sohl-Dickstein et al. 2015 (no modes; mode metrics are NaN).

Train and evaluation draws use separate generators, so the reference set is never trained on.

The artifact records the training set's spread, :func:`data_scale` (``meta["scale"]``): the Denoising
Diffusion GAN and the GAN baselines (``stages/train_gan.py``) work in units where it equals the spread
their recipe was tuned at, as the official DDGAN code (Xiao et al. 2022) scales images to [-1, 1].
"""
from __future__ import annotations

import math

import torch

DATASETS = ("gauss25", "ring8", "swissroll")


def mode_means(name: str, params: dict) -> torch.Tensor:
    if name == "gauss25":
        g = torch.arange(-2, 3, dtype=torch.float32) * params["spacing"]
        ys, xs = torch.meshgrid(g, g, indexing="ij")
        return torch.stack([xs.reshape(-1), ys.reshape(-1)], 1)      # row-major: label = index // 5
    if name == "ring8":
        ang = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
        return params["radius"] * torch.stack([ang.cos(), ang.sin()], 1)
    if name == "swissroll":
        return torch.zeros(0, 2)
    raise ValueError(f"unknown dataset {name!r}; choose one of {DATASETS}")


def mode_labels(name: str, num_modes: int) -> torch.Tensor:
    """Class label of each mode: the grid row for gauss25, the mode itself for ring8."""
    idx = torch.arange(num_modes)
    return idx // 5 if name == "gauss25" else idx


def draw(name: str, params: dict, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """n points and their labels (mode class; -1 for the swiss roll)."""
    if name == "swissroll":
        u = torch.rand(n, generator=generator)
        t = 1.5 * math.pi * (1 + 2 * u)
        x = torch.stack([t * t.cos(), t * t.sin()], 1) * params["scale"] / math.pi
        x = x + params["noise"] * torch.randn(n, 2, generator=generator)
        return x, torch.full((n,), -1, dtype=torch.long)
    means = mode_means(name, params)
    mode = torch.randint(0, means.shape[0], (n,), generator=generator)
    x = means[mode] + params["std"] * torch.randn(n, 2, generator=generator)
    return x, mode_labels(name, means.shape[0])[mode]


def data_scale(x: torch.Tensor) -> float:
    """The spread of a training set: the root mean squared distance of its points from their mean,
    sqrt(tr Cov(x)), in float64 with exactly rounded sums (``math.fsum``), so that no summation order
    (CPU kind, thread count) reaches the artifact.  Equivariant: data scaled by c has spread c times,
    bit for bit when c is a power of 2.  A global spread, not a nearest-neighbour (mode-width) scale:
    the DDGAN recipe held when the modes' std changed 8x at a fixed spacing and failed when the
    spacing changed at a fixed std (``params.yaml``, ``ddgan.model.scale_ref``)."""
    x = x.double()
    n = x.shape[0]
    mean = torch.tensor([math.fsum(column) / n for column in x.T.tolist()], dtype=torch.float64)
    return math.sqrt(math.fsum((x - mean).pow(2).flatten().tolist()) / n)


def generate(data_cfg, seed: int) -> tuple[dict[str, torch.Tensor], dict]:
    """The dataset artifact of the typed ``data`` section: train and eval draws, the mixture's modes;
    its parameters are recorded as plain values (``params``), which ``draw`` reads."""
    name = data_cfg.name
    params = getattr(data_cfg, name).plain()
    train_x, train_y = draw(name, params, data_cfg.num_train, torch.Generator().manual_seed(seed * 1000 + 1))
    eval_x, eval_y = draw(name, params, data_cfg.num_eval, torch.Generator().manual_seed(seed * 1000 + 2))
    means = mode_means(name, params)
    tensors = {"train": train_x, "train_labels": train_y, "eval": eval_x, "eval_labels": eval_y,
               "mode_means": means, "mode_labels": mode_labels(name, means.shape[0])}
    meta = {"kind": "dataset", "dataset": name, "params": params, "std": params.get("std"),
            "scale": data_scale(train_x), "seed": seed, "data_dim": 2}
    return tensors, meta
