"""Sample-quality metrics through torch-fidelity (not re-implemented here).

The Frechet distance of any feature set (the toy's random Fourier features, its raw coordinates as
``fd_xy``, an image profile's Inception or classifier features) uses
``torch_fidelity.metric_fid`` (Gaussian statistics and the trace formula of Heusel et al. 2017)
and precision/recall ``torch_fidelity.metric_prc`` (k-NN manifolds, Kynkaanniemi et al. 2019),
with the generated samples as input 1 and the real ones as input 2, torch-fidelity 0.4's convention.

Both modules are torch-fidelity's own files, executed without the package's ``__init__`` and its
``utils`` (issue 21): those import torchvision, whose ``ops`` import ``torch._dynamo``, 1.3 s of
start-up in every evaluation job, for the image-input API that features already extracted never
call.  A stand-in ``torch_fidelity.utils`` raises if that API is reached.  Where torch-fidelity is
already imported (image profiles: ``evaluation/images.py``), its modules are used as they are.
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
def _metric_modules() -> tuple[types.ModuleType, types.ModuleType]:
    """torch-fidelity's ``metric_fid`` and ``metric_prc``, loaded without its image stack."""
    if "torch_fidelity.utils" in sys.modules:
        return (importlib.import_module("torch_fidelity.metric_fid"),
                importlib.import_module("torch_fidelity.metric_prc"))
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
        loaded = []
        for name in ("metric_fid", "metric_prc"):
            mspec = importlib.util.spec_from_file_location(f"torch_fidelity.{name}",
                                                           f"{package.__path__[0]}/{name}.py")
            module = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(module)
            loaded.append(module)
    finally:   # leave no partial package behind: a later ``import torch_fidelity`` loads it whole
        for name in set(sys.modules) - before:
            if name == "torch_fidelity" or name.startswith("torch_fidelity."):
                del sys.modules[name]
    return loaded[0], loaded[1]


def statistics(features: torch.Tensor) -> dict:
    """torch-fidelity's Gaussian statistics (mu, sigma) of a feature set, in float64."""
    return _metric_modules()[0].fid_features_to_statistics(features.double().cpu())


def frechet_from_statistics(s1: dict, s2: dict) -> float:
    fid = _metric_modules()[0]
    return float(fid.fid_statistics_to_metric(s1, s2, verbose=False)[fid.KEY_METRIC_FID])


def frechet_distance(generated: torch.Tensor, real: torch.Tensor) -> float:
    return frechet_from_statistics(statistics(generated), statistics(real))


def precision_recall(generated: torch.Tensor, real: torch.Tensor, *, neighborhood: int = 3,
                     max_samples: int | None = None, seed: int = 0) -> tuple[float, float]:
    if max_samples is not None:
        g = torch.Generator().manual_seed(seed)
        if generated.shape[0] > max_samples:
            generated = generated[torch.randperm(generated.shape[0], generator=g)[:max_samples]]
        if real.shape[0] > max_samples:
            real = real[torch.randperm(real.shape[0], generator=g)[:max_samples]]
    prc = _metric_modules()[1]
    out = prc.prc_features_to_metric(generated.float().cpu(), real.float().cpu(), prc_neighborhood=neighborhood,
                                     prc_batch_size=10000, save_cpu_ram=True, verbose=False)
    return float(out[prc.KEY_METRIC_PRECISION]), float(out[prc.KEY_METRIC_RECALL])


def finite_or_nan(x: float) -> float:
    return float(x) if np.isfinite(x) else float("nan")
