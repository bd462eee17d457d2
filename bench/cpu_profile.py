"""Benchmark: where a toy sample bank's CPU time goes, and what the CPU-specific knobs change (issue 21).
Not a test: it prints tables measured side by side in one run, naming the CPU.

    python bench/cpu_profile.py [--model-dir results/toy/models/teacher_ddpm] [--spec ddpm-beta-s1000]
                                [--steps 200] [--batch 10000] [--repeats 3]

It runs the bank's sampler as ``trilemma sample`` does (one thread, the bank's batch), on the first
``--steps`` steps of its chain (the per-step cost is flat along the chain), and prints
1. the ``torch.profiler`` table of one run, grouped: matrix products (``addmm``: MKL's sgemm on x86
   CPU wheels), element-wise kernels, random numbers, allocation/copies, the rest;
2. the wall and CPU time per step under: the job's settings (glibc keeps freed blocks:
   ``cli.keep_freed_memory``; denormals as the CPU handles them), ``torch.set_flush_denormal(True)``,
   two threads, glibc's default allocator behaviour (a fresh process, without
   ``keep_freed_memory``), AVX2 kernels on an AVX-512 CPU (what the AMD EPYC kind runs), the bank
   in ten batches of a tenth, and the network called on 256 or 4096 rows at a time instead of the job's
   1024 (with AVX2 kernels too), interleaved ``--repeats`` times, medians, each with the process's
   single-thread matmul throughput (the issue's 1000 x 128 @ 128 x 128: 76 GFLOP/s on the EPYC).
On a CPU where a bank is much slower than the matrix throughput predicts, the shares in 1. say which
kind of kernel is slow, and 2. which knob matters.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GROUPS = {"matrix products (addmm/mm/linear)": ("addmm", "mm", "matmul", "linear", "bmm"),
          "random numbers": ("normal_", "normal", "randn", "uniform_", "random_"),
          "allocation, copies, views": ("empty", "copy_", "to", "_to_copy", "full", "fill_", "zero_", "view",
                                        "expand", "as_strided", "t", "transpose", "select", "slice",
                                        "unsqueeze", "contiguous", "detach", "clone", "resize_", "cat")}


def setup(args):
    import torch

    from trilemma import config
    from trilemma.artifacts import load_model
    from trilemma.sampling import registry
    den, info = load_model(args.model_dir)
    spec = registry.parse(args.spec)   # the whole chain, stopped after --steps steps by the callback
    run = registry.build(spec, den.eval(), config.load_typed("toy").sampling, info, None)
    x = torch.randn(args.batch, 2, generator=torch.Generator().manual_seed(0))

    class Stop(Exception):
        pass

    def stop_after(state):
        if state["i"] + 1 >= args.steps:
            raise Stop

    def once():
        try:
            run(x, generator=torch.Generator().manual_seed(1), callback=stop_after)
        except Stop:
            pass
    return once, min(args.steps, spec.steps)


# Variants run in a fresh process each.  "AVX2 kernels" makes ATen and MKL take their AVX2 code paths on a
# CPU that has AVX-512 (as the AMD EPYC kind of issue 21 has none: it runs these paths); "batch / 10" runs
# the bank as 10 batches of a tenth (activations of 0.5 MiB instead of 5 MiB at the toy's 10,000 x 128).
# "slices of N" sets the denoiser's rows per network call (``diffusion/denoiser.ROWS_PER_CALL``, 1024 in the
# job): one 1024-row activation is 0.5 MiB, and a step holds a few, about a Xeon core's 2 MiB of L2 but
# twice an AMD Zen 3 core's 512 KiB, so the best size may differ between the two kinds.
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
VARIANTS = ["job settings", "flush denormals", "2 threads", "default allocator", "AVX2 kernels", "batch / 10",
            "slices of 256", "slices of 4096", "AVX2, slices of 256"]


def matmul_gflops(torch) -> float:
    """Single-thread float32 throughput of the product the issue quotes (1000 x 128 @ 128 x 128)."""
    a, b = torch.randn(1000, 128), torch.randn(128, 128)
    for _ in range(20):
        a @ b
    n, t0 = 2000, time.perf_counter()
    for _ in range(n):
        a @ b
    return 2 * 1000 * 128 * 128 * n / (time.perf_counter() - t0) / 1e9


def child(args) -> None:
    """One measurement in this process: {"wall": s, "cpu": s} per step, for --variant."""
    import torch
    if args.variant != "default allocator":
        from trilemma.cli import keep_freed_memory
        keep_freed_memory()
    torch.set_num_threads(2 if args.variant == "2 threads" else 1)
    torch.set_flush_denormal(args.variant == "flush denormals")
    parts = 10 if args.variant == "batch / 10" else 1
    if "slices of" in args.variant:
        from trilemma.diffusion import denoiser
        denoiser.ROWS_PER_CALL = int(args.variant.rsplit(" ", 1)[1])
    args.batch //= parts
    once, steps = setup(args)
    once()   # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(parts):
        once()
    print(json.dumps({"wall": (time.perf_counter() - t0) / steps, "cpu": (time.process_time() - c0) / steps,
                      "gflops": matmul_gflops(torch), "isa": torch.backends.cpu.get_cpu_capability()}))


def profile_table(args) -> None:
    import torch
    from torch.profiler import ProfilerActivity, profile

    from trilemma.cli import keep_freed_memory
    keep_freed_memory()
    torch.set_num_threads(1)
    once, steps = setup(args)
    once()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        once()
    totals: dict[str, float] = defaultdict(float)
    for e in prof.key_averages():
        name = e.key.removeprefix("aten::")
        group = next((g for g, names in GROUPS.items() if name in names), None)
        if group is None:
            group = "element-wise and the rest" if e.key.startswith("aten::") else None
        if group:
            totals[group] += e.self_cpu_time_total / 1e6
    whole = sum(totals.values())
    print(f"\ntorch.profiler, one run of {steps} steps at batch {args.batch} (self CPU time of aten ops)")
    print("| kernels | s | share | per step ms |\n|---|---|---|---|")
    for g, s in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"| {g} | {s:.3f} | {s / whole:.0%} | {1e3 * s / steps:.2f} |")
    print("\ntop ops:\n" + prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=str(REPO / "results/toy/models/teacher_ddpm"))
    ap.add_argument("--spec", default="ddpm-beta-s1000")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=10000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--variant", default=None, help=argparse.SUPPRESS)   # internal: one child measurement
    args = ap.parse_args()
    if args.variant:
        return child(args)
    from trilemma.evaluation.timing import device_name
    import torch
    torch.set_num_threads(1)
    print(f"{args.spec} of {args.model_dir}, first {args.steps} steps, batch {args.batch}, "
          f"{device_name(torch.device('cpu'))}, torch {torch.__version__}, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    profile_table(args)
    variants = VARIANTS
    results = {v: [] for v in variants}
    base = [sys.executable, __file__, "--model-dir", args.model_dir, "--spec", args.spec, "--steps", str(args.steps),
            "--batch", str(args.batch)]
    for r in range(args.repeats):
        for k in range(len(variants)):
            v = variants[(r + k) % len(variants)]
            out = subprocess.run([*base, "--variant", v], capture_output=True, text=True, check=True,
                                 env={**os.environ, **(AVX2 if "AVX2" in v else {})}).stdout
            results[v].append(json.loads(out.strip().splitlines()[-1]))
    print(f"\nper step, median of {args.repeats} interleaved runs (each a fresh process)")
    print("| variant | wall ms | CPU ms | CPU / job settings | kernels | matmul GFLOP/s (1 thread) |\n"
          "|---|---|---|---|---|---|")
    ref = statistics.median(x["cpu"] for x in results["job settings"])
    for v in variants:
        wall, cpu, gflops = (statistics.median(x[k] for x in results[v]) for k in ("wall", "cpu", "gflops"))
        print(f"| {v} | {1e3 * wall:.2f} | {1e3 * cpu:.2f} | {cpu / ref:.2f} | {results[v][0]['isa']} | {gflops:.0f} |")


if __name__ == "__main__":
    main()
