"""Sample-quality metrics of feature sets, as torch-fidelity computes them.

The Frechet distance of any feature set (the toy's random Fourier features, its raw coordinates as
``fd_xy``, an image profile's Inception or classifier features) uses
``torch_fidelity.metric_fid`` (Gaussian statistics and the trace formula of Heusel et al. 2017).
Precision/recall of 2-D banks (k-NN manifolds, Kynkaanniemi et al. 2019) is torch-fidelity's
``metric_prc`` arithmetic with a faster read of the k-NN radius (:func:`precision_recall`; tested
equal to torch-fidelity's function); image banks call torch-fidelity's own (``evaluation/images.py``).
The generated samples are input 1 and the real ones input 2, torch-fidelity 0.4's convention.

``metric_fid`` is torch-fidelity's own file, executed without the package's ``__init__`` and its
``utils`` (issue 21): those import torchvision, whose ``ops`` import ``torch._dynamo``, 1.3 s of
start-up in every evaluation job, for the image-input API that features already extracted never
call.  A stand-in ``torch_fidelity.utils`` raises if that API is reached.  Where torch-fidelity is
already imported (image profiles: ``evaluation/images.py``), its module is used as it is.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=None)
def _metric_fid() -> types.ModuleType:
    """torch-fidelity's ``metric_fid``, loaded without its image stack."""
    if "torch_fidelity.utils" in sys.modules:
        return importlib.import_module("torch_fidelity.metric_fid")
    spec = importlib.util.find_spec("torch_fidelity")   # locates the package, runs nothing
    before = set(sys.modules)
    package = types.ModuleType("torch_fidelity")
    package.__path__ = list(spec.submodule_search_locations)
    utils = types.ModuleType("torch_fidelity.utils")

    def unavailable(name):
        def call(*args, **kwargs):
            raise RuntimeError(f"torch_fidelity.utils.{name}: trilemma loads torch-fidelity's feature-level "
                               "metrics only; import torch_fidelity first for its image API")
        return call
    utils.__getattr__ = unavailable
    sys.modules.update({"torch_fidelity": package, "torch_fidelity.utils": utils})
    try:
        mspec = importlib.util.spec_from_file_location("torch_fidelity.metric_fid",
                                                       f"{package.__path__[0]}/metric_fid.py")
        module = importlib.util.module_from_spec(mspec)
        mspec.loader.exec_module(module)
    finally:   # leave no partial package behind: a later ``import torch_fidelity`` loads it whole
        for name in set(sys.modules) - before:
            if name == "torch_fidelity" or name.startswith("torch_fidelity."):
                del sys.modules[name]
    return module


def statistics(features: torch.Tensor) -> dict:
    """torch-fidelity's Gaussian statistics (mu, sigma) of a feature set, in float64."""
    return _metric_fid().fid_features_to_statistics(features.double().cpu())


def frechet_from_statistics(s1: dict, s2: dict) -> float:
    fid = _metric_fid()
    return float(fid.fid_statistics_to_metric(s1, s2, verbose=False)[fid.KEY_METRIC_FID])


def frechet_distance(generated: torch.Tensor, real: torch.Tensor) -> float:
    return frechet_from_statistics(statistics(generated), statistics(real))


def precision_recall(generated: torch.Tensor, real: torch.Tensor, *, neighborhood: int = 3,
                     max_samples: int | None = None, seed: int = 0) -> tuple[float, float]:
    """Improved precision and recall (Kynkaenniemi et al. 2019, Sec. 2): the share of generated points
    inside some real point's k-NN ball, and of real points inside some generated point's.

    The arithmetic is torch-fidelity's ``metric_prc.calculate_precision_recall_part`` (``torch.cdist``
    in the same blocks of rows and columns, the same ``<=`` test), with two changes that leave the
    numbers identical (tests/test_metrics.py checks them against torch-fidelity's function):
    - a ball's radius, the (k+1)-th smallest distance of a row, is read with ``topk``, not ``kthvalue``:
      the same order statistic, at a fifth of the CPU (0.05 s against 0.25 s for 5000 x 5000 points,
      Intel Xeon, one thread), which was half of every toy evaluation job (issue 21);
    - a block of distances that spans every column is used as ``cdist`` returns it, not copied by a
      one-element ``torch.cat`` (0.036 s a block)."""
    if max_samples is not None:
        g = torch.Generator().manual_seed(seed)
        if generated.shape[0] > max_samples:
            generated = generated[torch.randperm(generated.shape[0], generator=g)[:max_samples]]
        if real.shape[0] > max_samples:
            real = real[torch.randperm(real.shape[0], generator=g)[:max_samples]]
    generated, real = generated.float().cpu(), real.float().cpu()
    recall = _share_inside_balls(real, generated, _knn_radius(generated, neighborhood))
    precision = _share_inside_balls(generated, real, _knn_radius(real, neighborhood))
    return precision, recall


PRC_BATCH = 10_000   # rows per distance block, torch-fidelity's prc_batch_size


def _distances(rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """``torch.cdist(rows, columns)`` computed in blocks of :data:`PRC_BATCH` columns (torch-fidelity's
    ``calc_cdist_part``)."""
    blocks = [torch.cdist(rows, block) for block in columns.split(PRC_BATCH)]
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=1)


def _knn_radius(points: torch.Tensor, neighborhood: int) -> torch.Tensor:
    """Each point's distance to its ``neighborhood``-th nearest neighbour (the point itself is the 0th)."""
    return torch.cat([_distances(rows, points).topk(neighborhood + 1, dim=1, largest=False).values[:, -1]
                      for rows in points.split(PRC_BATCH)])


def _share_inside_balls(points: torch.Tensor, centres: torch.Tensor, radius: torch.Tensor) -> float:
    """The share of ``points`` within ``radius[j]`` of some ``centres[j]``."""
    inside = [(_distances(rows, centres) <= radius).any(dim=1).float() for rows in points.split(PRC_BATCH)]
    return torch.cat(inside).mean().item()


def finite_or_nan(x: float) -> float:
    return float(x) if np.isfinite(x) else float("nan")
