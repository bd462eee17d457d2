"""Generate a 2-D dataset (train and evaluation draws) deterministically from the config's seed."""
from __future__ import annotations

from trilemma import config
from trilemma.artifacts import save_tensors
from trilemma.data.toy2d import generate


def add_arguments(p):
    p.add_argument("--dataset", required=True, help="dataset name (must be data.name of the profile)")
    p.add_argument("--out", required=True, help="output .safetensors path")


def run(args):
    cfg = config.load(args.profile)
    if args.dataset != cfg["data"]["name"]:
        raise config.ConfigError(f"--dataset {args.dataset} differs from data.name = {cfg['data']['name']}")
    tensors, meta = generate(cfg["data"], cfg["seed"])
    save_tensors(args.out, tensors, meta)
    print(f"wrote {args.out}: {tensors['train'].shape[0]} train / {tensors['eval'].shape[0]} eval points")
