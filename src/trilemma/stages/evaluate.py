"""Metrics of one sample bank against the evaluation draw.  2-D banks: the panel of
``trilemma.evaluation.panel`` (headline Fréchet distance in random Fourier features at the data's
scale, the raw-coordinate ``fd_xy``, mixture NLL, coverage JSD, modes, HQ share, precision/recall),
each with a bootstrap 95% half-width ``<col>_ci``.  Guidance banks (with requested labels) add
``class_consistency``, ``fd_to_target`` (the distance to a draw of the exact tilted target
p(x | y)^a p(x)^(1-a) that the guidance aims at, on mixtures) and, given ``--reference-bank`` (the CFG teacher's reference sampler at the same
w), ``fd_to_teacher``: the Fréchet distance between the two sample sets in the same features (0 for
the reference bank itself, empty where there is no reference).
Image banks: FID, IS, KID and precision/recall in the profile's feature space against the cached
reference statistics (``trilemma.evaluation.images``); with the profile's own classifier as the
extractor, also its class shares and, for class-conditional banks, consistency and confidence in the
requested class (``trilemma.evaluation.classes``).

Several GPUs on an image profile (``resources.evaluate.gpu`` > 1; issue 7): the verb re-runs itself
under torchrun, the ranks extract the features of disjoint runs of whole batches (the expensive part:
an Inception pass per image) and rank 0 gathers them, computes the metrics once and writes.  The toy
metrics stay in one process: they take seconds on 2-D points, less than starting the ranks."""
from __future__ import annotations

from trilemma import config, dag
from trilemma.artifacts import ArtifactError, load_tensors, save_json
from trilemma.evaluation.features2d import toy_features
from trilemma.evaluation.fidelity import frechet_distance
from trilemma.evaluation.panel import point_panel


def add_arguments(p):
    p.add_argument("--bank", required=True, help="sample bank from `trilemma sample`")
    p.add_argument("--data", required=True, help="dataset from `trilemma fetch-data`")
    p.add_argument("--out", required=True, help="output metrics .json")
    p.add_argument("--reference", default=None, help="image profiles: reference statistics from reference-stats")
    p.add_argument("--reference-bank", default=None,
                   help="guidance banks: the CFG teacher's reference bank at the same w (fd_to_teacher)")


def run(args):
    cfg = config.load(args.profile)
    if not dag.is_2d(cfg):
        import sys

        from trilemma.training.distributed import launch
        launch(dag.resources(cfg, "evaluate")["gpu"], sys.argv[1:])
    ev = cfg["evaluation"]
    bank, bmeta = load_tensors(args.bank)
    data, dmeta = load_tensors(args.data)
    if bmeta.get("kind") != "bank":
        raise ArtifactError(f"{args.bank}: not a sample bank (kind={bmeta.get('kind')!r})")
    if dmeta.get("image"):
        return run_images(args, cfg, bank["samples"], bmeta, dmeta, bank.get("labels"))
    x, real = bank["samples"], data["eval"]
    features = toy_features(ev["features"], dmeta["dataset"], dmeta["params"])
    requested = bank.get("labels")
    row = {k: v for k, v in bmeta.items() if k not in ("kind", "timing")}
    row.update(point_panel(x, real, features=features, means=data["mode_means"], mode_labels=data["mode_labels"],
                           std=dmeta["std"], ev=ev, seed=cfg["seed"], requested=requested))
    row.update({"feature_space": features.name, "dataset": dmeta["dataset"]})
    if requested is not None:
        row["fd_to_teacher"] = fd_to_teacher(cfg, x, features, args.reference_bank, bmeta)
        row["fd_to_target"] = fd_to_target(cfg, x, requested, features, data, dmeta, bmeta)
    save_json(args.out, row)
    print(f"wrote {args.out}: FD {row['fd']:.4g} ± {row['fd_ci']:.2g} [{features.name}], FD(xy) {row['fd_xy']:.4g}, "
          f"P {row['precision']:.3f}, R {row['recall']:.3f}, modes {row['modes']}, hq {row['hq']:.3f}")


def fd_to_target(cfg, x, requested, features, data, dmeta, bmeta) -> float | None:
    """Guided banks on a mixture: the Fréchet distance (same features) to a draw of the exact tilted
    target p(x | y)^a p(x)^(1-a) that the guidance formula aims at (``evaluation/guided_target.py``)."""
    if bmeta.get("w") is None or not dmeta.get("std") or data["mode_means"].shape[0] == 0:
        return None
    import torch

    from trilemma.evaluation.guided_target import guidance_exponent, guided_target_draw
    a = guidance_exponent(bmeta["method"], bmeta["w"])
    target = guided_target_draw(data["mode_means"], data["mode_labels"], dmeta["std"], requested, a,
                                torch.Generator().manual_seed(cfg["seed"] * 1000 + 4))
    return frechet_distance(features(x), features(target))


def fd_to_teacher(cfg, x, features, reference_bank, bmeta) -> float | None:
    """The Fréchet distance (same features as the headline) to the CFG teacher's reference bank."""
    if reference_bank:
        ref, _ = load_tensors(reference_bank)
        return frechet_distance(features(x), features(ref["samples"]))
    is_reference = bmeta["method"] == "cfg" and bmeta["steps"] == cfg["guidance"]["eval"]["reference_steps"]
    return 0.0 if is_reference else None


def run_images(args, cfg, samples, bmeta, dmeta, requested=None):
    import torch

    from trilemma import paths
    from trilemma.evaluation.images import extract_sharded, extractor_spec, image_metrics, sha256sum
    from trilemma.training.distributed import context, shutdown

    ctx = context()
    ev, evi = cfg["evaluation"], cfg["evaluation"]["images"]
    spec = extractor_spec(evi, paths.fmt(paths.FEATURE_NET_DIR, profile=cfg["profile"]))
    if not args.reference:
        raise ArtifactError("image banks need --reference (the output of `trilemma reference-stats`)")
    ref, rmeta = load_tensors(args.reference)
    if rmeta.get("extractor_key") != spec["key"] or rmeta.get("data_sha256") != sha256sum(args.data):
        raise ArtifactError(f"{args.reference}: computed with another dataset or extractor; re-run reference-stats")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    feats = extract_sharded(ctx, spec, samples, evi["batch_size"], device)
    shutdown()
    if feats is None:   # not rank 0
        return
    row = {k: v for k, v in bmeta.items() if k not in ("kind", "timing")}
    row.update(image_metrics(feats, ref, spec, ev, evi, cfg["seed"]))
    if spec["kind"] == "feature_net":   # the profile's own classes (Inception's 1008 are ImageNet's)
        from trilemma.evaluation.classes import class_statistics
        row.update(class_statistics(feats[spec["isc"]], dmeta["num_classes"], requested))
    row.update({"dataset": dmeta["dataset"], "reference": f"{rmeta['split']} ({rmeta['num_images']} images)"})
    save_json(args.out, row)
    print(f"wrote {args.out}: FID {row['fd']:.4g}, IS {row['isc']:.3f}, KID {row['kid']:.4g}, "
          f"P {row['precision']:.3f}, R {row['recall']:.3f} [{row['feature_space']}]")
