"""DDIM's deterministic sampler as a map between noise and data (Song, Meng & Ermon 2021, Sec. 5.3-5.4):

- **inversion** (Table 2): encode x_0 -> x_T with S steps of the eta = 0 update run backwards, decode
  with the same S steps, per-coordinate squared reconstruction error ||x_0 - x_0'||^2 / d;
- **consistency** (Fig. 5): one batch of x_T decoded with S steps lands near its S_max-step decode,
  so x_T is the sample's code whatever the step count;
- **interpolation** (Fig. 6): decoded slerp paths between pairs of x_T, beside linear ones.

Every decode is :func:`~trilemma.sampling.ddim.sample_ddim` at eta = 0 on the model's own uniform grid:
the DDIM grid ``range(0, T, T // S)`` of a discrete chain, t_i = i / N on a continuous-time model
(a progressive-distillation student's own grid).
"""
from __future__ import annotations

import math

import pandas as pd
import torch

from trilemma.diffusion.oracle import GaussianMixture, OracleDenoiser
from trilemma.sampling.ddim import sample_ddim
from trilemma.sampling.ddim_inversion import reconstruct_ddim
from trilemma.sampling.interpolation import lerp, slerp


def grid(denoiser, steps: int) -> torch.Tensor:
    """The model's S-step eta = 0 grid (what the ``ddim-eta0-uniform-s<S>`` and ``pd-s<N>`` banks walk)."""
    if denoiser.schedule.continuous:
        from trilemma.diffusion.continuous import uniform_grid
        return uniform_grid(steps)
    from trilemma.diffusion.timesteps import ddim_uniform, sampling_grid
    return sampling_grid(ddim_uniform(denoiser.schedule.num_steps, steps))


def decode(denoiser, x_T: torch.Tensor, steps: int) -> torch.Tensor:
    return sample_ddim(denoiser, x_T, grid(denoiser, steps))


def oracle_of(data: dict, meta: dict, schedule) -> OracleDenoiser | None:
    """The exact denoiser of the data's mixture on ``schedule`` (None: no closed form, the swiss roll)."""
    try:
        return OracleDenoiser(GaussianMixture.from_data(data, meta), schedule)
    except ValueError:
        return None


def mode_spacing(means: torch.Tensor) -> float:
    """The smallest distance between two modes of the data (gauss25: the grid spacing)."""
    d = torch.cdist(means.double(), means.double())
    return float(d[d > 0].min())


def nearest_mode(x: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    return torch.cdist(x.double(), means.double()).argmin(1)


# ----------------------------------------------------------------------------- inversion (Table 2)
def inversion(denoiser, x_0: torch.Tensor, steps: int, means: torch.Tensor | None = None) -> dict:
    """Reconstruction error of one model at S steps: per-coordinate MSE (mean, standard error and median
    over points), the share of points reconstructed onto another mode (mixtures) and the encoded latents'
    mean |x_T|^2 / d (1 on the Gaussian's shell)."""
    x_T, rec = reconstruct_ddim(denoiser, x_0, grid(denoiser, steps))
    err = ((rec - x_0) ** 2).flatten(1).mean(1).double()
    flipped = (nearest_mode(rec, means) != nearest_mode(x_0, means)).double().mean() if means is not None else math.nan
    return {"steps": steps, "mse": float(err.mean()), "mse_se": float(err.std() / err.numel() ** 0.5),
            "mse_median": float(err.median()), "other_mode": float(flipped),
            "latent_norm2": float((x_T.double() ** 2).mean())}


def inversion_table(models: list[tuple[str, object, list[int]]], x_0: torch.Tensor,
                    means: torch.Tensor | None = None) -> pd.DataFrame:
    """One row per (model, S) over ``models`` = [(label, denoiser, steps)]."""
    return pd.DataFrame([{"model": name, **inversion(den, x_0, s, means)} for name, den, steps in models for s in steps])


# ----------------------------------------------------------------------------- consistency (Fig. 5)
def consistency(denoiser, x_T: torch.Tensor, steps: list[int], means: torch.Tensor | None) -> tuple[pd.DataFrame, dict]:
    """Distance of each S-step decode to the S_max-step decode of the same x_T: mean and std of the
    per-point Euclidean distance, both over the data's mode spacing, and the share of points decoded
    onto the same mode (mixtures).  Returns (table, {S: decodes})."""
    decodes = {s: decode(denoiser, x_T, s) for s in sorted(steps)}
    ref_steps = max(decodes)
    ref = decodes[ref_steps]
    spacing = mode_spacing(means) if means is not None else float("nan")
    rows = []
    for s, x in decodes.items():
        dist = (x - ref).double().flatten(1).norm(dim=1)
        same = (nearest_mode(x, means) == nearest_mode(ref, means)).double().mean() if means is not None else float("nan")
        rms = dist / x[0].numel() ** 0.5                  # root-mean-square difference per coordinate (pixel)
        rows.append({"steps": s, "reference": ref_steps, "mean": float(dist.mean()), "std": float(dist.std()),
                     "rms_mean": float(rms.mean()), "rms_std": float(rms.std()),
                     "mean_rel": float(dist.mean()) / spacing, "std_rel": float(dist.std()) / spacing,
                     "same_mode": float(same), "spacing": spacing})
    return pd.DataFrame(rows), decodes


# ----------------------------------------------------------------------------- interpolation (Fig. 6)
def interpolation(denoiser, z0: torch.Tensor, z1: torch.Tensor, num: int, steps: int) -> dict:
    """Decoded paths between the pairs (rows of z0, z1) at ``num`` values of a in [0, 1], spherical and
    linear: {kind: (flat latents (num, P, d), decodes (num, P, *shape))}; a point or an image per pair."""
    a = torch.linspace(0.0, 1.0, num, dtype=torch.float64)
    shape = z0.shape[1:]
    out = {}
    for kind, path in (("slerp", slerp), ("linear", lerp)):
        z = path(z0.flatten(1), z1.flatten(1), a)        # (num, P, d): the paths in the flat latent space
        out[kind] = (z, decode(denoiser, z.reshape(-1, *shape), steps).reshape(num, -1, *shape))
    return out


def norm_profile(paths: dict) -> pd.DataFrame:
    """|z|^2 / d along each kind of path: mean over the pairs at every a (1 on the shell)."""
    rows = []
    for kind, (z, _) in paths.items():
        n2 = (z.double() ** 2).flatten(2).mean(-1)       # (num, P)
        a = torch.linspace(0.0, 1.0, z.shape[0], dtype=torch.float64)
        rows += [{"kind": kind, "a": float(a[i]), "norm2": float(n2[i].mean()), "norm2_min": float(n2[i].min())}
                 for i in range(z.shape[0])]
    return pd.DataFrame(rows)
