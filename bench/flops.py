"""Benchmark: FLOPs per network forward, counted by ``torch.utils.flop_counter.FlopCounterMode``
(matmuls and convolutions; elementwise ops are not counted), for every network preset the
profiles use.  Prints one table; with ``--profile`` it reads that profile's model section.

    python bench/flops.py [--profile toy] [--batch 1]
"""
from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from trilemma import config
from trilemma.models.registry import build_model


def count_flops(net: torch.nn.Module, x: torch.Tensor, t: torch.Tensor) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x, t)
    return counter.get_total_flops()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=None)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    cfg = config.load(args.profile)
    model_cfg = cfg["teacher"]["model"]
    net = build_model(model_cfg, 2).eval()
    x = torch.randn(args.batch, 2)
    t = torch.full((args.batch,), 500.0)
    flops = count_flops(net, x, t)
    params = sum(p.numel() for p in net.parameters())
    print(f"profile {cfg['profile']}: FLOPs per forward (batch {args.batch}), counted")
    print(f"{'network':<28}{'params':>12}{'FLOPs/forward':>16}{'FLOPs/sample':>16}")
    print(f"{'teacher ' + model_cfg['kind']:<28}{params:>12,}{flops:>16,}{flops // args.batch:>16,}")


if __name__ == "__main__":
    main()
