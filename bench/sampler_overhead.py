"""Benchmark: the overhead of our DDIM loop vs the diffusers ``DDIMScheduler`` loop around the same
network, step count and batch (target ratio <= 1.0).  Not a test: it prints one table of ratios
measured side by side in one run.

    python bench/sampler_overhead.py [--steps 50] [--batch 100] [--repeats 20] [--model-dir DIR]

Without ``--model-dir`` the toy MLP is built with random weights (the loop cost does not depend on
the weights).  Both loops use the same uniform ("leading") timesteps and eta = 0.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from diffusers import DDIMScheduler

from trilemma.artifacts import load_model
from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import DiscreteSchedule, linear_betas
from trilemma.diffusion.timesteps import ddim_uniform, sampling_grid
from trilemma.evaluation.timing import device_name
from trilemma.models.registry import build_model
from trilemma.sampling.ddim import sample_ddim


def median_time(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.model_dir:
        den, _ = load_model(args.model_dir)
    else:
        net = build_model({"kind": "mlp", "hidden": 128, "depth": 3, "emb_dim": 64}, 2).eval()
        den = Denoiser(net, DiscreteSchedule(linear_betas(1e-4, 0.02, 1000)))
    net = den.net
    x_T = torch.randn(args.batch, 2, generator=torch.Generator().manual_seed(0))
    grid = sampling_grid(ddim_uniform(den.schedule.num_steps, args.steps))

    sched = DDIMScheduler(num_train_timesteps=den.schedule.num_steps, beta_start=1e-4, beta_end=0.02,
                          beta_schedule="linear", clip_sample=False, set_alpha_to_one=True,
                          timestep_spacing="leading", steps_offset=0)

    @torch.no_grad()
    def diffusers_loop():
        sched.set_timesteps(args.steps)
        x = x_T
        for t in sched.timesteps:
            eps = net(x, t.float().expand(x.shape[0]))
            x = sched.step(eps, t, x, eta=0.0).prev_sample
        return x

    @torch.no_grad()
    def network_only():
        x = x_T
        for t in grid[:-1]:
            net(x, t.float().expand(x.shape[0]))
        return x

    ours = lambda: sample_ddim(den, x_T, grid)  # noqa: E731
    agree = torch.allclose(ours(), diffusers_loop(), atol=1e-3)
    t_net = median_time(network_only, args.repeats)
    t_ours = median_time(ours, args.repeats)
    t_diff = median_time(diffusers_loop, args.repeats)
    print(f"DDIM loop overhead, {args.steps} steps, batch {args.batch}, {device_name(torch.device('cpu'))}")
    print(f"samples agree (atol 1e-3): {agree}")
    print(f"{'loop':<22}{'median s':>12}{'overhead s':>12}{'ratio vs diffusers':>20}")
    for name, t in (("network calls only", t_net), ("trilemma sample_ddim", t_ours), ("diffusers DDIMScheduler", t_diff)):
        print(f"{name:<22}{t:>12.5f}{t - t_net:>12.5f}{t / t_diff:>20.3f}")
    print(f"overhead ratio (ours / diffusers, network time removed): {(t_ours - t_net) / (t_diff - t_net):.3f}")


if __name__ == "__main__":
    main()
