"""The floor of every metric: a fresh draw of the true data, the size of a sample bank.

A metric's value means something only beside the value of a perfect sampler, and on the toy a perfect
sampler exists: the data generator itself.  ``trilemma floor`` writes a bank of ``n`` fresh points
(with their true labels, so class consistency has a floor too) from a generator seed that neither
the training nor the evaluation draw uses, and the ordinary ``evaluate`` job scores it.  Its rows in
``metrics.csv`` have ``method`` = ``data``; every table prints them and the figures draw them as a
horizontal line.  Spec ids: ``fresh-n<N>`` (one per bank size of the profile: ``dag.floor_bank_ids``).
"""
from __future__ import annotations

import torch

from trilemma import config
from trilemma.dag import parse_floor_spec
from trilemma.artifacts import ArtifactError, load_tensors, save_tensors
from trilemma.data import toy2d

LABEL = "Fresh draw of the data (floor)"

def add_arguments(p):
    p.add_argument("--data", required=True, help="dataset from `trilemma fetch-data` (its generator parameters)")
    p.add_argument("--spec", required=True, help="fresh-n<N>: the bank size")
    p.add_argument("--out", required=True, help="output sample bank (.safetensors)")
    p.add_argument("--no-progress", action="store_true", help="accepted as for `trilemma sample`; no effect")


def run(args):
    cfg = config.load(args.profile)
    n = parse_floor_spec(args.spec)
    _, dmeta = load_tensors(args.data)
    if dmeta.get("kind") != "dataset" or dmeta.get("image"):
        raise ArtifactError(f"{args.data}: the floor needs a 2-D dataset artifact")
    g = torch.Generator().manual_seed(cfg["seed"] * 1000 + 3)   # 1 and 2 are the train and eval draws
    x, y = toy2d.draw(dmeta["dataset"], dmeta["params"], n, g)
    meta = {"kind": "bank", "model": "data", "model_method": "data", "method": "data", "spec": args.spec,
            "sampler": LABEL, "steps": None, "nfe": 0, "num_samples": n, "time_per_100_s": None,
            "device": None, "seed": cfg["seed"]}
    save_tensors(args.out, {"samples": x, "labels": y}, meta)
    print(f"wrote {args.out}: {n} fresh points of {dmeta['dataset']}")
