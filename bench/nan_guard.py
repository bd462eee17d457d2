"""Benchmark: the NaN guard's share of a toy-teacher training step (issue 20 target: < 2%).

    python bench/nan_guard.py [--steps 300] [--repeats 9] [--profile toy]

A/B in one process: A is the training loop as shipped (``trilemma.training.loop``); B is the same
module compiled from its own source with the two guards cut out (the per-step ``math.isfinite`` of
each phase's loss and the weight check before each checkpoint), so nothing else differs.  Each
repeat trains the profile's DDPM teacher (its network, batch and optimizer; data: a fresh gauss25
draw) for ``--steps`` steps from the same seed with A and B in alternating order; the overhead is
the median over repeats of time(A) / time(B) - 1.  Both variants write the run's final checkpoint.
On a shared machine that ratio is noise-bound (the guard is far below the step-to-step jitter), so the
guard's own cost is also timed directly: the per-step ``math.isfinite`` and the weight check spread
over ``checkpoint_every`` steps, as a share of the step time.
"""
from __future__ import annotations

import argparse
import inspect
import math
import statistics
import sys
import tempfile
import time
import types

import torch

from trilemma import config
from trilemma.data.toy2d import generate
from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.evaluation.timing import device_name
from trilemma.models.registry import build_model
from trilemma.schema.models import Config
from trilemma.training import loop
from trilemma.training.tasks.ddpm import DDPMTask

LOSS_GUARD = """                if not math.isfinite(value):
                    raise Diverged(desc, f"{value} {ph.name} loss", step, saved, state_path)
"""
WEIGHT_GUARD = """        for name, mod in task.modules.items():
            if not all(bool(torch.isfinite(p).all()) for p in mod.parameters()):
                raise Diverged(desc, f"non-finite weights in '{name}'", step, saved, state_path)
"""


def unguarded_loop() -> types.ModuleType:
    """``trilemma.training.loop`` without its two guards (B of the A/B)."""
    source = inspect.getsource(loop)
    for guard in (LOSS_GUARD, WEIGHT_GUARD):
        if guard not in source:
            sys.exit("bench/nan_guard.py: the guard's code changed in training/loop.py; update LOSS_GUARD/WEIGHT_GUARD")
        source = source.replace(guard, "")
    module = types.ModuleType("loop_unguarded")
    sys.modules[module.__name__] = module   # dataclasses look their module up
    exec(compile(source, "loop_unguarded", "exec"), module.__dict__)
    return module


def run(module, cfg: Config, train_x: torch.Tensor, steps: int) -> float:
    """Seconds to train the teacher for ``steps`` steps with ``module.train``."""
    section = cfg.teacher
    torch.manual_seed(0)
    net = build_model(section.model.plain(), 2)
    task = DDPMTask(net, DiscreteSchedule.from_config(section.schedule.plain()), train_x, section.train)
    block = section.train.model_copy(update={"samples": steps * section.train.batch_size})
    loop_cfg = module.LoopConfig.from_config(block)
    with tempfile.TemporaryDirectory() as resume:
        t0 = time.perf_counter()
        module.train(task, loop_cfg, seed=0, resume_dir=resume, fingerprint="bench", progress=False)
        return time.perf_counter() - t0


def direct_cost_s(cfg: Config, calls: int = 200_000) -> float:
    """Seconds per step of the guards themselves: one ``math.isfinite`` per phase (the teacher has one)
    plus the weight check (all parameters) divided by ``checkpoint_every``."""
    value, t0 = 0.123, time.perf_counter()
    for _ in range(calls):
        math.isfinite(value)
    per_loss = (time.perf_counter() - t0) / calls
    net = build_model(cfg.teacher.model.plain(), 2)
    t0 = time.perf_counter()
    for _ in range(100):
        all(bool(torch.isfinite(p).all()) for p in net.parameters())
    per_check = (time.perf_counter() - t0) / 100
    return per_loss + per_check / cfg.teacher.train.checkpoint_every


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--profile", default="toy")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = config.load_typed(args.profile)
    tensors, _ = generate(cfg.data, seed=0)
    variants = {"guarded": loop, "unguarded": unguarded_loop()}
    run(loop, cfg, tensors["train"], 20)   # warm-up
    times = {name: [] for name in variants}
    for r in range(args.repeats):
        order = list(variants) if r % 2 == 0 else list(variants)[::-1]
        for name in order:
            times[name].append(run(variants[name], cfg, tensors["train"], args.steps))
    ratios = [a / b for a, b in zip(times["guarded"], times["unguarded"])]
    step_ms = 1e3 * statistics.median(times["unguarded"]) / args.steps
    print(f"device: {device_name(torch.device('cpu'))}; profile {args.profile} teacher, {args.steps} steps x {args.repeats} repeats")
    print(f"step time (unguarded, median): {step_ms:.3f} ms")
    print(f"ratios guarded/unguarded: {', '.join(f'{r:.4f}' for r in ratios)}")
    print(f"NaN-guard overhead, A/B (median of ratios - 1): {100 * (statistics.median(ratios) - 1):+.2f}% (target < 2%)")
    direct = direct_cost_s(cfg)
    print(f"NaN-guard cost, timed directly: {1e6 * direct:.3f} us per step = {100 * direct / (step_ms / 1e3):.4f}% of the step")


if __name__ == "__main__":
    main()
