"""Image metrics through torch-fidelity 0.4: FID (Heusel et al. 2017), Inception Score (Salimans et
al. 2016), KID (Binkowski et al. 2018) and improved precision/recall (Kynkaanniemi et al. 2019).

Samples are uint8 images held in memory, given to torch-fidelity as a Dataset that returns uint8
3xHxW tensors (grey images repeated over 3 channels); generated samples are always input 1.  The
feature space is part of the profile and named in every row:

- ``inception``: torch-fidelity's ``inception-v3-compat`` (the TF Inception of the TTUR code), pool3
  (2048) for FID/KID/PRC and ``logits_unbiased`` for IS, with the weights from a configured local path,
  sha256-checked and loaded tensor-only before torch-fidelity reads them; never downloaded.
- ``feature_net``: the profile's own classifier (``trilemma feature-net``), registered as a
  torch-fidelity feature extractor: penultimate features for FID/KID/PRC, logits for IS.

The real side is a cached artifact (``trilemma reference-stats``): FID statistics of the reference
split and a feature subset for KID and PRC, keyed by the data file's and the extractor's checksums.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch.utils.data import Dataset
from torch_fidelity import register_feature_extractor
from torch_fidelity.feature_extractor_base import FeatureExtractorBase
from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric
from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric
from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY
from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

from trilemma.artifacts import ArtifactError, load_tensors
from trilemma.evaluation.classes import class_statistics

if TYPE_CHECKING:
    from trilemma.schema.models import Config, Evaluation, ImageEvaluation

FEATURE_NET = "trilemma-feature-net"
INCEPTION = "inception-v3-compat"
FEATURE_SPACES = {"inception": "Inception-v3 pool3 (torch-fidelity inception-v3-compat, 2048-d)",
                  "feature_net": "feature_net classifier, penultimate layer"}


class UInt8Images(Dataset):
    """(N, C, H, W) uint8 images -> uint8 3xHxW items, the input torch-fidelity's extractors expect."""

    def __init__(self, images: torch.Tensor):
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"expected uint8 (N, 1|3, H, W) images, got {images.dtype} {tuple(images.shape)}")
        self.images = images

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        x = self.images[i]
        return x.expand(3, -1, -1).contiguous() if x.shape[0] == 1 else x


class FeatureNetExtractor(FeatureExtractorBase):
    """The profile's classifier as a torch-fidelity extractor (weights: its model directory)."""

    def __init__(self, name, features_list, feature_extractor_weights_path=None, **kwargs):
        super().__init__(name, features_list)
        from trilemma.models.classifier import load_classifier
        self.net, self.info = load_classifier(feature_extractor_weights_path)
        self.in_ch = self.info["data_dim"][0]

    @staticmethod
    def get_provided_features_list():
        return ("penultimate", "logits_unbiased")

    @staticmethod
    def get_default_feature_layer_for_metric(metric):
        return "logits_unbiased" if metric == "isc" else "penultimate"

    @staticmethod
    def can_be_compiled():
        return False

    @staticmethod
    def get_dummy_input_for_compile():
        return torch.zeros(1, 3, 28, 28, dtype=torch.uint8)

    def forward(self, x):
        x = x.float()
        x = x.mean(1, keepdim=True) if self.in_ch == 1 else x     # grey images were repeated to 3 channels
        feats, logits = self.net.features(x / 127.5 - 1.0)
        out = {"penultimate": feats, "logits_unbiased": logits}
        return tuple(out[f].float() for f in self.features_list)


if FEATURE_NET not in FEATURE_EXTRACTORS_REGISTRY:
    register_feature_extractor(FEATURE_NET, FeatureNetExtractor)


def sha256sum(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_inception_weights(path, sha256: str) -> str:
    """The configured Inception weights: present, with the configured sha256, and tensors only."""
    path = Path(path) if path else None
    how = ("put torch-fidelity's weights-inception-2015-12-05-6726825d.pth (released at "
           "github.com/toshas/torch-fidelity/releases/tag/v0.2.0) there and set "
           "evaluation.images.inception.weights to its path; nothing is downloaded")
    if path is None or not path.is_file():
        raise ArtifactError(f"Inception weights not found at {path}: {how}")
    actual = sha256sum(path)
    if actual != sha256:
        raise ArtifactError(f"{path}: sha256 {actual} != configured {sha256} (wrong or corrupted "
                            f"weights file); {how}")
    try:
        torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - anything but plain tensors is refused
        raise ArtifactError(f"{path}: not a plain tensor state dict ({exc})") from None
    return actual


def extractor_spec(ev_images: ImageEvaluation, feature_net_dir=None) -> dict:
    """Name, layers, weights and checksum key of the profile's feature extractor."""
    kind = ev_images.extractor
    if kind == "inception":
        inc = ev_images.inception
        key = check_inception_weights(inc.weights, inc.sha256)
        return {"kind": kind, "name": INCEPTION, "weights": str(inc.weights), "key": key,
                "fid": "2048", "isc": "logits_unbiased", "feature_space": FEATURE_SPACES[kind]}
    weights = Path(feature_net_dir) / "model.safetensors"
    if not weights.is_file():
        raise ArtifactError(f"{weights}: not found (run `trilemma feature-net` first)")
    return {"kind": kind, "name": FEATURE_NET, "weights": str(feature_net_dir), "key": sha256sum(weights),
            "fid": "penultimate", "isc": "logits_unbiased", "feature_space": FEATURE_SPACES[kind]}


def extract(spec: dict, images: torch.Tensor, batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
    """{layer: features} of uint8 (N, C, H, W) images for the FID/KID/PRC and IS layers."""
    cuda = device.type == "cuda"
    layers = list(dict.fromkeys([spec["fid"], spec["isc"]]))
    extractor = create_feature_extractor(spec["name"], layers, cuda=cuda, verbose=False,
                                         feature_extractor_weights_path=spec["weights"])
    return get_featuresdict_from_dataset(UInt8Images(images), extractor, batch_size, cuda,
                                         save_cpu_ram=True, verbose=False)


def extract_sharded(ctx, spec: dict, images: torch.Tensor, batch_size: int,
                    device: torch.device) -> dict[str, torch.Tensor] | None:
    """``extract`` with the batches shared among the ranks of ``ctx`` (``training/distributed.py``):
    each rank runs a contiguous run of whole batches, so every batch is the one a single process
    runs; rank 0 gets all features in image order, the other ranks None."""
    mine = ctx.batch_slice(images.shape[0], batch_size)
    parts = ctx.gather(extract(spec, images[mine], batch_size, device) if mine.stop > mine.start else None)
    if parts is None:
        return None
    parts = [p for p in parts if p is not None]
    return {k: torch.cat([p[k] for p in parts]) for k in parts[0]}


def reference_tensors(features: dict, spec: dict, max_subset: int, seed: int) -> dict[str, torch.Tensor]:
    """FID statistics of all reference features, a seeded subset for KID/PRC, and the real data's IS."""
    fid = features[spec["fid"]].double()
    stats = fid_features_to_statistics(fid)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(fid.shape[0], generator=g)[:max_subset]
    return {"mu": torch.from_numpy(stats["mu"]), "sigma": torch.from_numpy(stats["sigma"]),
            "features": features[spec["fid"]][idx].float(), "logits": features[spec["isc"]][idx].float()}


def image_metrics(gen: dict, ref: dict, spec: dict, ev: Evaluation, ev_images: ImageEvaluation, seed: int) -> dict:
    """FID, IS, KID, precision and recall of generated features ``gen`` against the reference ``ref``."""
    g_feat = gen[spec["fid"]]
    stats = fid_features_to_statistics(g_feat.double())
    fid = fid_statistics_to_metric(stats, {"mu": ref["mu"].numpy(), "sigma": ref["sigma"].numpy()},
                                   verbose=False)[KEY_METRIC_FID]
    isc = isc_features_to_metric(gen[spec["isc"]], splits=ev_images.isc_splits, shuffle=True, rng_seed=seed)
    sub = min(ev_images.kid_subset_size, g_feat.shape[0], ref["features"].shape[0])
    kid = kid_features_to_metric(g_feat.float(), ref["features"], kid_subsets=ev_images.kid_subsets,
                                 kid_subset_size=sub, rng_seed=seed, verbose=False)
    gsub = torch.randperm(g_feat.shape[0], generator=torch.Generator().manual_seed(seed))[:ev.max_prc_samples]
    prc = prc_features_to_metric(g_feat[gsub].float(), ref["features"][:ev.max_prc_samples],
                                 prc_neighborhood=ev.prc_neighborhood, save_cpu_ram=True, verbose=False)
    return {"fd": float(fid), "isc": float(isc[KEY_METRIC_ISC_MEAN]), "isc_std": float(isc[KEY_METRIC_ISC_STD]),
            "kid": float(kid[KEY_METRIC_KID_MEAN]), "kid_std": float(kid[KEY_METRIC_KID_STD]),
            "precision": float(prc[KEY_METRIC_PRECISION]), "recall": float(prc[KEY_METRIC_RECALL]),
            "kid_subset_size": sub, "feature_space": spec["feature_space"]}


def bank_metrics(cfg: Config, bank, bmeta, data, dmeta, *, reference=None, data_path=None, **_) -> dict | None:
    """Image banks: FID, IS, KID and precision/recall in the profile's feature space against the
    cached reference statistics; the ranks extract the features of their runs of batches, rank 0
    computes the metrics (None on the others)."""
    from trilemma import paths
    from trilemma.training.distributed import context, shutdown

    ctx = context()
    ev, evi = cfg.evaluation, cfg.evaluation.images
    spec = extractor_spec(evi, paths.fmt(paths.FEATURE_NET_DIR, profile=cfg.profile))
    if not reference:
        raise ArtifactError("image banks need --reference (the output of `trilemma reference-stats`)")
    ref, rmeta = load_tensors(reference)
    if rmeta.get("extractor_key") != spec["key"] or rmeta.get("data_sha256") != sha256sum(data_path):
        raise ArtifactError(f"{reference}: computed with another dataset or extractor; re-run reference-stats")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    feats = extract_sharded(ctx, spec, bank["samples"], evi.batch_size, device)
    shutdown()
    if feats is None:   # not rank 0
        return None
    out = {**image_metrics(feats, ref, spec, ev, evi, cfg.seed),
           "dataset": dmeta["dataset"], "reference": f"{rmeta['split']} ({rmeta['num_images']} images)"}
    if spec["kind"] == "feature_net":   # the profile's own classes (Inception's 1008 are ImageNet's)
        out.update(class_statistics(feats[spec["isc"]], dmeta["num_classes"], bank.get("labels")))
    return out
