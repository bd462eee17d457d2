"""Benchmark: the fixed cost of our DDIM loop (everything but the network) and the diffusers
``DDIMScheduler`` loop around the same network, step count and batch.  Not a test: it prints one
table measured side by side in one run.  Targets (issue 21): our fixed cost <= 15% of the network's
time at batch 100, 50 steps, toy MLP; our loop <= diffusers' loop.

    python bench/sampler_overhead.py [--steps 50] [--batch 100] [--repeats 40] [--model-dir DIR]

Stable on a noisy shared machine: the three loops run interleaved, in a rotating order, ``--repeats``
times; each repeat gives ratios of loops measured seconds apart, and the table reports the median of
those ratios (not the ratio of medians) with their interquartile range, in thread CPU time (what
other processes on the machine disturb least) and in wall time.

"network calls only" makes exactly the network calls of our loop (the same time inputs, built before
the clock starts), so ours - network is the loop's whole fixed cost: the schedule, the denoiser
wrapper, the update.  The model is the toy's trained DDPM teacher when ``results/toy`` has it (a
random MLP's last layer starts at zero, so its eps is 0 and its samples blow up), else a random MLP
with that layer re-initialised.  Both loops use the same uniform ("leading") timesteps and eta = 0.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from diffusers import DDIMScheduler

from trilemma.artifacts import load_model
from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import DiscreteSchedule, linear_betas
from trilemma.diffusion.timesteps import ddim_uniform, sampling_grid
from trilemma.evaluation.timing import device_name
from trilemma.models.registry import build_model
from trilemma.sampling.ddim import sample_ddim

TEACHER = Path(__file__).resolve().parents[1] / "results" / "toy" / "models" / "teacher_ddpm"


def clocks(fn) -> tuple[float, float]:
    """(thread CPU s, wall s) of one call."""
    c0, t0 = time.thread_time(), time.perf_counter()
    fn()
    return time.thread_time() - c0, time.perf_counter() - t0


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(values, n=4)
    return q1, q2, q3


def load_denoiser(model_dir: str | None):
    path = Path(model_dir) if model_dir else TEACHER
    if (path / "model.json").exists():
        den, _ = load_model(str(path))
        return den.eval(), str(path)
    torch.manual_seed(0)
    net = build_model({"kind": "mlp", "hidden": 128, "depth": 3, "emb_dim": 64}, 2).eval()
    torch.nn.init.normal_(net.out[1].weight, std=0.1)   # built at zero: eps = 0 would let x blow up
    return Denoiser(net, DiscreteSchedule(linear_betas(1e-4, 0.02, 1000))), "random MLP (hidden 128, depth 3)"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model-dir", default=None, help=f"default: {TEACHER} if present")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    den, model_name = load_denoiser(args.model_dir)
    net, schedule = den.net, den.schedule
    x_T = torch.randn(args.batch, 2, generator=torch.Generator().manual_seed(0))
    grid = sampling_grid(ddim_uniform(schedule.num_steps, args.steps))
    betas = schedule.betas
    sched = DDIMScheduler(num_train_timesteps=schedule.num_steps, trained_betas=betas.numpy(), clip_sample=False,
                          set_alpha_to_one=True, timestep_spacing="leading", steps_offset=0)
    t_inputs = [schedule.net_time(torch.full((args.batch,), t, dtype=torch.float64)).to(x_T.dtype)
                for t in grid[:-1].tolist()]   # what the denoiser wrapper hands the network

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
        for t_in in t_inputs:
            net(x, t_in)
        return x

    loops = {"network calls only": network_only, "trilemma sample_ddim": lambda: sample_ddim(den, x_T, grid),
             "diffusers DDIMScheduler": diffusers_loop}
    ours, theirs = loops["trilemma sample_ddim"](), diffusers_loop()
    agree = torch.allclose(ours, theirs, atol=1e-3)
    for fn in loops.values():   # warm-up
        fn(), fn()
    names = list(loops)
    times = {name: [] for name in names}
    for r in range(args.repeats):
        for k in range(len(names)):
            name = names[(r + k) % len(names)]
            times[name].append(clocks(loops[name]))
    net_, ours_, diff_ = (times[n] for n in names)
    print(f"DDIM loop overhead, {args.steps} steps, batch {args.batch}, {device_name(torch.device('cpu'))}, "
          f"{args.repeats} interleaved repeats, model: {model_name}")
    print(f"samples agree (atol 1e-3): {agree}")
    print("\n| loop | median CPU s | median wall s |\n|---|---|---|")
    for name in names:
        print(f"| {name} | {statistics.median(c for c, _ in times[name]):.5f} | "
              f"{statistics.median(w for _, w in times[name]):.5f} |")
    print("\n| per-repeat ratio (median [q1, q3]) | CPU | wall | target |\n|---|---|---|---|")
    rows = {
        "our fixed cost / network (ours - network) / network": (lambda i, j: (ours_[i][j] - net_[i][j]) / net_[i][j], "<= 0.15"),
        "diffusers' fixed cost / network": (lambda i, j: (diff_[i][j] - net_[i][j]) / net_[i][j], "-"),
        "ours / diffusers (whole loop)": (lambda i, j: ours_[i][j] / diff_[i][j], "<= 1"),
    }
    for label, (ratio, target) in rows.items():
        cells = []
        for j in (0, 1):   # CPU, wall
            q1, q2, q3 = quartiles([ratio(i, j) for i in range(args.repeats)])
            cells.append(f"{q2:.3f} [{q1:.3f}, {q3:.3f}]")
        print(f"| {label} | {cells[0]} | {cells[1]} | {target} |")


if __name__ == "__main__":
    main()
