"""Benchmark: FLOPs per network forward, counted by ``torch.utils.flop_counter.FlopCounterMode``
(matmuls, convolutions and attention; elementwise ops are not counted), for every network a profile
trains: the toy's MLPs, or the image profiles' U-Nets (DDPM teacher, distillation teacher, CFG teacher
with its label embedding) and the DDGAN generator and discriminator.  Prints one table.

    python bench/flops.py [--profile toy|fashion|cifar10|...] [--batch 1]
"""
from __future__ import annotations

import argparse

import torch
from torch.utils.flop_counter import FlopCounterMode

from trilemma import config, dag
from trilemma.models.registry import build_model

IMAGE_SHAPES = {"fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32)}
NUM_CLASSES = 10   # both image datasets


def count_flops(net: torch.nn.Module, *inputs) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(*inputs)
    return counter.get_total_flops()


def image_shape(cfg: dict) -> tuple[int, int, int]:
    c, h, w = IMAGE_SHAPES[cfg["data"]["name"]]
    crop = (cfg["data"].get("image") or {}).get("crop")
    return (c, crop, crop) if crop else (c, h, w)


def networks(cfg: dict, batch: int):
    """(name, network, inputs) for every network the profile trains."""
    t = torch.full((batch,), 500.0)
    if dag.is_2d(cfg):
        x = torch.randn(batch, 2)
        yield "teacher (mlp)", build_model(cfg["teacher"]["model"], 2).eval(), (x, t)
        return
    from trilemma.models.ddgan_images import build_discriminator, build_generator
    shape = image_shape(cfg)
    x = torch.randn(batch, *shape)
    for name, model in (("teacher_ddpm", cfg["teacher"]["model"]), ("teacher_pd", cfg["distill"]["teacher"]["model"])):
        yield f"{name} ({model['unet']['preset']})", build_model(model, list(shape)).eval(), (x, t)
    g = cfg["guidance"]["teacher"]["model"]
    cfg_model = {**g, "unet": {**g["unet"], "num_classes": NUM_CLASSES}}
    y = torch.zeros(batch, dtype=torch.long)
    yield f"teacher_cfg ({g['unet']['preset']} + labels)", build_model(cfg_model, list(shape)).eval(), (x, t, y)
    im = cfg["ddgan"]["image_model"]
    G = build_generator({"nz": im["nz"], "generator": im["generator"]}, list(shape)).eval()
    yield "ddgan generator", G, (x, t, torch.randn(batch, im["nz"]))
    D = build_discriminator(im["discriminator"], list(shape)).eval()
    yield "ddgan discriminator", D, (x, x, t)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default=None, help="config profile (default: the toy)")
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    cfg = config.load(args.profile)
    print(f"profile {cfg['profile']}: FLOPs per forward (batch {args.batch}), counted on the CPU in float32")
    print(f"{'network':<36}{'params':>14}{'FLOPs/forward':>18}{'FLOPs/sample':>18}")
    for name, net, inputs in networks(cfg, args.batch):
        flops = count_flops(net, *inputs)
        params = sum(p.numel() for p in net.parameters())
        print(f"{name:<36}{params:>14,}{flops:>18,}{flops // args.batch:>18,}", flush=True)


if __name__ == "__main__":
    main()
