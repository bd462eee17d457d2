"""Register the exact denoiser of the toy's Gaussian mixture as a model (issue 24): the mixture of the
data artifact (means, weights, mode labels, std) in ``model.safetensors`` and a ``model.json`` of kind
``oracle`` on the DDPM teacher's schedule (``teacher.schedule``), so ``trilemma sample`` runs every
sampler spec on it as on a trained teacher (``diffusion/oracle.py``).  Nothing is trained; the
training log holds one line describing the mixture."""
from __future__ import annotations

import json
from pathlib import Path

from trilemma import config
from trilemma.artifacts import _atomic, load_tensors


def add_arguments(p):
    p.add_argument("--data", required=True, help="the toy dataset artifact (gauss25 or ring8)")
    p.add_argument("--out", required=True, help="output model.safetensors (model.json and train_log.jsonl beside it)")


def run(args):
    from trilemma.diffusion.oracle import GaussianMixture, save_oracle
    cfg = config.load_typed(args.profile)
    tensors, meta = load_tensors(args.data)
    mixture = GaussianMixture.from_data(tensors, meta)
    save_oracle(args.out, mixture, cfg.teacher.schedule.plain(), meta["dataset"])
    line = {"kind": "oracle", "dataset": meta["dataset"], "components": int(mixture.means.shape[0]),
            "classes": mixture.num_classes, "std": mixture.std}
    _atomic(Path(args.out).with_name("train_log.jsonl"), lambda tmp: Path(tmp).write_text(json.dumps(line) + "\n"))
    print(f"wrote {args.out}: the exact denoiser of {meta['dataset']} ({line['components']} components)")
