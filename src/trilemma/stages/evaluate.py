"""Metrics of one sample bank against the evaluation draw: Frechet distance and precision/recall
through torch-fidelity (features = coordinates), modes covered and high-quality share (PacGAN).
Guidance banks (with requested labels) add ``class_consistency`` and, given ``--reference-bank`` (the
CFG teacher's reference sampler at the same w), ``fd_to_teacher``: the Frechet distance between the
two sample sets (0 for the reference bank itself, empty where there is no reference).
Image banks: FID, IS, KID and precision/recall in the profile's feature space against the cached
reference statistics (``trilemma.evaluation.images``).

Several GPUs on an image profile (``resources.evaluate.gpu`` > 1; issue 7): the verb re-runs itself
under torchrun, the ranks extract the features of disjoint runs of whole batches (the expensive part:
an Inception pass per image) and rank 0 gathers them, computes the metrics once and writes.  The toy
metrics stay in one process: they take seconds on 2-D points, less than starting the ranks."""
from __future__ import annotations

from trilemma import config, dag
from trilemma.artifacts import ArtifactError, load_tensors, save_json
from trilemma.evaluation.fidelity import frechet_distance, precision_recall
from trilemma.evaluation.toy import class_consistency, mode_metrics


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
        return run_images(args, cfg, bank["samples"], bmeta, dmeta)
    x, real = bank["samples"], data["eval"]
    prec, rec = precision_recall(x, real, neighborhood=ev["prc_neighborhood"],
                                 max_samples=ev["max_prc_samples"], seed=cfg["seed"])
    modes = mode_metrics(x, data["mode_means"], dmeta["std"] or 0.0, num_std=ev["hq_num_std"],
                         min_share=ev["mode_min_share"])
    row = {k: v for k, v in bmeta.items() if k not in ("kind", "timing")}
    row.update({"fd": frechet_distance(x, real), "precision": prec, "recall": rec, **modes,
                "feature_space": "2-D coordinates", "dataset": dmeta["dataset"]})
    if "labels" in bank:
        row.update(guidance_metrics(cfg, x, bank["labels"], data, dmeta, args.reference_bank, bmeta))
    save_json(args.out, row)
    print(f"wrote {args.out}: FD {row['fd']:.4g}, P {prec:.3f}, R {rec:.3f}, modes {modes['modes']}, hq {modes['hq']:.3f}")


def guidance_metrics(cfg, x, labels, data, dmeta, reference_bank, bmeta) -> dict:
    cc = class_consistency(x, labels, data["mode_means"], data["mode_labels"], dmeta["std"] or 0.0,
                           num_std=cfg["evaluation"]["hq_num_std"])
    is_reference = bmeta["method"] == "cfg" and bmeta["steps"] == cfg["guidance"]["eval"]["reference_steps"]
    fd_teacher = 0.0 if is_reference else None
    if reference_bank:
        ref, _ = load_tensors(reference_bank)
        fd_teacher = frechet_distance(x, ref["samples"])
    return {"class_consistency": cc, "fd_to_teacher": fd_teacher}


def run_images(args, cfg, samples, bmeta, dmeta):
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
    row.update({"dataset": dmeta["dataset"], "reference": f"{rmeta['split']} ({rmeta['num_images']} images)"})
    save_json(args.out, row)
    print(f"wrote {args.out}: FID {row['fd']:.4g}, IS {row['isc']:.3f}, KID {row['kid']:.4g}, "
          f"P {row['precision']:.3f}, R {row['recall']:.3f} [{row['feature_space']}]")
