"""Benchmark: the fraction of the device's bf16 matrix throughput that DDIM sampling with the image
U-Nets achieves (issue 7's target: >= 40%, or an explanation from the profile of what prevents it).

One run, side by side:

1. **Ceiling**: bf16 ``(n x n) @ (n x n)`` products (n = 8192 on a GPU), ``2 n^3`` FLOPs each, median
   over repeats, rotating among several input pairs so that no repeat reads a cached operand.
2. **FLOPs per forward**, counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions,
   matmuls and attention; elementwise work is not counted, so the achieved rate is a lower bound).
3. **DDIM sampling** (``sampling/ddim.py``, eta 0) of each network at each batch size, bf16 autocast +
   channels-last as the profiles run it, eager, and on CUDA also ``torch.compile`` for the first
   preset at the largest batch: the median seconds per step and the achieved FLOP/s as a fraction of
   the ceiling.
4. **Where the time goes**: ``torch.profiler`` over a few steps of the largest batch; the device time
   of matrix kernels (GEMM, convolution, attention) against everything else (GroupNorm, SiLU, adds,
   copies), and the ten most expensive kernels.

    python bench/gpu_sampling_mfu.py --out $OUT/mfu.json [--batches 256 1024] [--steps 8] [--smoke]

``--smoke`` runs every path at toy sizes on whatever device there is (CPU included): a test of the
script, not a measurement.  On the CPU the networks run in float32 (``models/unet.py``).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import DiscreteSchedule, linear_betas
from trilemma.diffusion.timesteps import ddim_uniform, sampling_grid
from trilemma.models.unet import build_unet
from trilemma.sampling.ddim import sample_ddim

# substrings of matrix-unit kernel names (cuBLAS/cuDNN/CUTLASS GEMMs and convolutions, flash attention) and,
# for the CPU smoke run, of the aten ops that call them
MATRIX_KERNELS = ("gemm", "conv", "cutlass", "xmma", "sm90_", "sm80_", "wgmma", "flash", "fmha", "attention",
                  "implicit", "cudnn", "cublas", "fprop", "aten::mm", "bmm", "addmm")


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def median_seconds(fn, device, *, repeats: int, warmup: int) -> float:
    """Median wall time of ``fn()`` with the device synchronised around each call."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_ceiling(device, n: int, repeats: int) -> dict:
    """bf16 (CUDA) / fp32 (CPU) matrix-product rate in FLOP/s: the ceiling the sampler is measured against."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    pairs = [(torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype))
             for _ in range(4)]
    out = torch.empty(n, n, device=device, dtype=dtype)
    state = {"i": 0}

    def one():
        a, b = pairs[state["i"] % len(pairs)]
        state["i"] += 1
        torch.matmul(a, b, out=out)

    s = median_seconds(one, device, repeats=repeats, warmup=3)
    return {"n": n, "dtype": str(dtype).removeprefix("torch."), "seconds": s, "flops_per_s": 2 * n ** 3 / s}


def count_forward_flops(net, x, t) -> int:
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        net(x, t)
    return counter.get_total_flops()


def network(preset: str, device, *, compile: bool) -> torch.nn.Module:
    cfg = {"unet": {"preset": preset, "bf16": True, "channels_last": True, "compile": compile}}
    return build_unet(cfg, [3, 32, 32]).to(device).eval()


def ddim_setup(preset: str, device, batch: int, steps: int, *, compile: bool):
    """(denoiser, time grid, x_T) of a ``steps``-step DDIM run of ``preset`` at ``batch``."""
    torch.manual_seed(0)
    den = Denoiser(network(preset, device, compile=compile), DiscreteSchedule(linear_betas(1e-4, 0.02, 1000)), "eps")
    return den, sampling_grid(ddim_uniform(1000, steps)), torch.randn(batch, 3, 32, 32, device=device)


def is_matrix(kernel: str) -> bool:
    return any(k in kernel.lower() for k in MATRIX_KERNELS)


def sampling(preset: str, device, batch: int, steps: int, *, compile: bool, repeats: int) -> dict:
    """Seconds per DDIM step at ``batch`` (the median over ``repeats`` runs of ``steps`` steps)."""
    den, grid, x_T = ddim_setup(preset, device, batch, steps, compile=compile)
    t0 = time.perf_counter()
    with torch.no_grad():
        sample_ddim(den, x_T, grid)                       # warm-up (and compilation)
        sync(device)
        first_s = time.perf_counter() - t0
        s = median_seconds(lambda: sample_ddim(den, x_T, grid), device, repeats=repeats, warmup=1)
    return {"seconds_per_step": s / steps, "first_run_s": first_s}


def kernel_profile(preset: str, device, batch: int, steps: int) -> dict:
    """Device time by kernel over ``steps`` DDIM steps: matrix kernels vs the rest."""
    from torch.profiler import ProfilerActivity, profile
    den, grid, x_T = ddim_setup(preset, device, batch, steps, compile=False)
    cuda = device.type == "cuda"
    with torch.no_grad():
        sample_ddim(den, x_T, grid)
        sync(device)
        with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as prof:
            sample_ddim(den, x_T, grid)
            sync(device)
    attr = "self_device_time_total" if cuda else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, attr) > 0]
    total = sum(getattr(e, attr) for e in events) or 1.0
    matrix_us = sum(getattr(e, attr) for e in events if is_matrix(e.key))
    top = sorted(events, key=lambda e: -getattr(e, attr))[:10]
    return {"device_time_us": total, "matrix_share": matrix_us / total,
            "top": [{"kernel": e.key[:120], "share": getattr(e, attr) / total, "calls": e.count,
                     "matrix": is_matrix(e.key)} for e in top]}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="JSON file for every number")
    p.add_argument("--presets", nargs="+", default=["cifar10", "pd_cifar10"])
    p.add_argument("--batches", nargs="+", type=int, default=[256, 1024])
    p.add_argument("--steps", type=int, default=8, help="DDIM steps per timed run")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    p.add_argument("--smoke", action="store_true")
    args = p.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.smoke:
        args.batches, args.steps, args.repeats = [2], 2, 1
    compile_modes = [False] if args.no_compile or device.type != "cuda" else [False, True]
    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu", "smoke": args.smoke,
              "torch": torch.__version__}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def dump():   # after every row: a timeout keeps the rows measured so far
        out.write_text(json.dumps(result, indent=2) + "\n")

    result["ceiling"] = matmul_ceiling(device, 256 if args.smoke or device.type != "cuda" else 8192,
                                       repeats=3 if args.smoke else 50)
    peak = result["ceiling"]["flops_per_s"]
    print(f"device: {result['device']}; matrix ceiling ({result['ceiling']['dtype']}, n={result['ceiling']['n']}): "
          f"{peak / 1e12:.1f} TFLOP/s", flush=True)
    rows = result["sampling"] = []
    for preset in args.presets:
        x1 = torch.randn(1, 3, 32, 32)
        flops = count_forward_flops(network(preset, torch.device("cpu"), compile=False), x1, torch.full((1,), 500.0))
        for batch in args.batches:
            # compiling takes a minute per network and batch: only the first preset at the largest batch
            compiled = preset == args.presets[0] and batch == max(args.batches)
            for comp in [c for c in compile_modes if compiled or not c]:
                r = sampling(preset, device, batch, args.steps, compile=comp, repeats=args.repeats)
                achieved = flops * batch / r["seconds_per_step"]
                rows.append({"preset": preset, "batch": batch, "compile": comp, "flops_per_sample": flops, **r,
                             "images_per_s_per_step": batch / r["seconds_per_step"],
                             "achieved_flops_per_s": achieved, "fraction_of_ceiling": achieved / peak})
                print(f"{preset:<11} batch {batch:>5} {'compiled' if comp else 'eager':<8} "
                      f"{r['seconds_per_step'] * 1e3:9.2f} ms/step  {achieved / 1e12:7.2f} TFLOP/s  "
                      f"{achieved / peak:6.1%} of ceiling", flush=True)
                dump()
    result["profile"] = kernel_profile(args.presets[0], device, max(args.batches), min(args.steps, 4))
    prof = result["profile"]
    print(f"profile ({args.presets[0]}, batch {max(args.batches)}, eager): matrix kernels "
          f"{prof['matrix_share']:.1%} of device time; top kernels:")
    for k in prof["top"]:
        print(f"  {k['share']:6.1%} {'M' if k['matrix'] else ' '} {k['calls']:>6}  {k['kernel']}")
    dump()


if __name__ == "__main__":
    main()
