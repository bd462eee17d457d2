"""Metrics of one sample bank against the evaluation draw: Frechet distance and precision/recall
through torch-fidelity (features = coordinates), modes covered and high-quality share (PacGAN)."""
from __future__ import annotations

from trilemma import config
from trilemma.artifacts import ArtifactError, load_tensors, save_json
from trilemma.evaluation.fidelity import frechet_distance, precision_recall
from trilemma.evaluation.toy import mode_metrics


def add_arguments(p):
    p.add_argument("--bank", required=True, help="sample bank from `trilemma sample`")
    p.add_argument("--data", required=True, help="dataset from `trilemma fetch-data`")
    p.add_argument("--out", required=True, help="output metrics .json")


def run(args):
    cfg = config.load(args.profile)
    ev = cfg["evaluation"]
    bank, bmeta = load_tensors(args.bank)
    data, dmeta = load_tensors(args.data)
    if bmeta.get("kind") != "bank":
        raise ArtifactError(f"{args.bank}: not a sample bank (kind={bmeta.get('kind')!r})")
    x, real = bank["samples"], data["eval"]
    prec, rec = precision_recall(x, real, neighborhood=ev["prc_neighborhood"],
                                 max_samples=ev["max_prc_samples"], seed=cfg["seed"])
    modes = mode_metrics(x, data["mode_means"], dmeta["std"] or 0.0, num_std=ev["hq_num_std"],
                         min_share=ev["mode_min_share"])
    row = {k: v for k, v in bmeta.items() if k not in ("kind", "timing")}
    row.update({"fd": frechet_distance(x, real), "precision": prec, "recall": rec, **modes,
                "feature_space": "2-D coordinates", "dataset": dmeta["dataset"]})
    save_json(args.out, row)
    print(f"wrote {args.out}: FD {row['fd']:.4g}, P {prec:.3f}, R {rec:.3f}, modes {modes['modes']}, hq {modes['hq']:.3f}")
