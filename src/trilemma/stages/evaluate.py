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

from trilemma import config, modality
from trilemma.artifacts import ArtifactError, load_tensors, save_json


def add_arguments(p):
    p.add_argument("--bank", required=True, help="sample bank from `trilemma sample`")
    p.add_argument("--data", required=True, help="dataset from `trilemma fetch-data`")
    p.add_argument("--out", required=True, help="output metrics .json")
    p.add_argument("--reference", default=None, help="image profiles: reference statistics from reference-stats")
    p.add_argument("--reference-bank", default=None,
                   help="guidance banks: the CFG teacher's reference bank at the same w (fd_to_teacher)")


def run(args):
    """The bank's row: its sampling metadata and the metrics of the profile's modality
    (:mod:`trilemma.modality`); None from the ranks that do not write."""
    cfg = config.load_typed(args.profile)
    mod = modality.of(cfg)
    if mod.image:   # several GPUs extract features (the toy's metrics stay in one process)
        import sys

        from trilemma.training.distributed import launch
        launch(cfg.resource("evaluate").gpu, sys.argv[1:])
    bank, bmeta = load_tensors(args.bank)
    data, dmeta = load_tensors(args.data)
    if bmeta.get("kind") != "bank":
        raise ArtifactError(f"{args.bank}: not a sample bank (kind={bmeta.get('kind')!r})")
    metrics = mod.metrics(cfg, bank, bmeta, data, dmeta, reference=args.reference,
                          reference_bank=args.reference_bank, data_path=args.data)
    if metrics is None:   # not rank 0
        return
    row = {k: v for k, v in bmeta.items() if k not in ("kind", "timing")}
    row.update(metrics)
    save_json(args.out, row)
    print(f"wrote {args.out}: {mod.summary(row)}")
