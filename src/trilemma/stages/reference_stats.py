"""The real side of the image metrics, computed once per dataset and feature extractor: FID
statistics (mean, covariance) of the reference split's features, a seeded feature subset for KID and
precision/recall, and the real images' IS logits.  Keyed by the data file's and the extractor's
checksums, which ``trilemma evaluate`` checks (torch-fidelity's own cache is keyed by name only)."""
from __future__ import annotations

import torch

from trilemma import config, paths
from trilemma.artifacts import load_tensors, save_tensors
from trilemma.evaluation.images import extract, extractor_spec, reference_tensors, sha256sum


def add_arguments(p):
    p.add_argument("--data", required=True, help="image dataset .safetensors from fetch-data")
    p.add_argument("--out", required=True, help="output reference statistics .safetensors")


def run(args):
    cfg = config.load_typed(args.profile)
    ev, evi = cfg.evaluation, cfg.evaluation.images
    spec = extractor_spec(evi, paths.fmt(paths.FEATURE_NET_DIR, profile=cfg.profile))
    data, dmeta = load_tensors(args.data)
    images = data[evi.reference]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    features = extract(spec, images, evi.batch_size, device)
    tensors = reference_tensors(features, spec, ev.max_prc_samples, cfg.seed)
    meta = {"kind": "reference", "dataset": dmeta["dataset"], "split": evi.reference,
            "num_images": int(images.shape[0]), "data_sha256": sha256sum(args.data),
            "extractor": spec["kind"], "extractor_key": spec["key"], "feature_space": spec["feature_space"]}
    save_tensors(args.out, tensors, meta)
    print(f"wrote {args.out}: {images.shape[0]} {evi.reference} images, {spec['feature_space']}")
