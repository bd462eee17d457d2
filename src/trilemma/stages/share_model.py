"""One trained network under a second model name: the distillation teacher *is* the CFG teacher.

Classifier-free guidance trains one network on labels dropped with probability ``p_uncond`` (Ho &
Salimans 2022, Alg. 1), so the same weights are a conditional model eps(z, c) and an unconditional one
eps(z, ∅) (the U-Net's null label).  The distillation teacher of Salimans & Ho 2022 is an unconditional
model with the same recipe (``distill.teacher.schedule``, ``parameterization``, ``weighting``), so a
profile short of compute may set ``distill.teacher.shared: teacher_cfg`` and train it once: this job
then writes ``teacher_pd`` as a copy of ``teacher_cfg`` (weights verified by their digest and re-written
with their own; ``model.json`` with ``shared_from``), and the PD chain, its DDIM baselines and
consistency distillation sample it without labels, i.e. through the null label.  The unconditional
model so obtained saw the null label on ``p_uncond`` of its batches only; the report says which
teacher every method used.
"""
from __future__ import annotations

import json
from pathlib import Path

from trilemma.artifacts import _atomic, load_json, load_tensors, save_json, save_tensors


def add_arguments(p):
    p.add_argument("--from", dest="source", required=True, help="model directory of the trained network")
    p.add_argument("--name", required=True, help="the model name it is shared under")
    p.add_argument("--out", required=True, help="output model.safetensors (model.json and train_log.jsonl beside it)")


def run(args):
    src, out = Path(args.source), Path(args.out)
    tensors, meta = load_tensors(src / "model.safetensors")
    info = load_json(src / "model.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_tensors(out, tensors, meta)
    save_json(out.with_name("model.json"), {**info, "name": args.name, "shared_from": info["name"]})
    line = {"kind": "shared", "from": info["name"], "as": args.name, "train_log": str(src / "train_log.jsonl")}
    _atomic(out.with_name("train_log.jsonl"), lambda tmp: Path(tmp).write_text(json.dumps(line) + "\n"))
    print(f"wrote {out}: {info['name']}'s weights as {args.name} (one network, trained once)")
