"""The one training loop.  Every method is a *task* that declares its modules and its update phases
(StyleGAN2-ADA's phase pattern); the loop owns everything else and never branches on the method:
seeding, the clock in samples seen, LR warm-up and schedule, EMA, gradient clipping, the progress
bar, the JSONL log, periodic checkpoints and exact resume after a kill.

Resume state (modules, EMA, optimizers, RNG, step) is written atomically every ``checkpoint_every``
steps and on SIGINT/SIGTERM to a directory outside the job's declared outputs.  A re-run with the
same fingerprint continues from it; on CPU the final weights equal those of an uninterrupted run.

Adversarial tasks (DDGAN, GAN, WGAN-GP) use two StyleGAN2-ADA phase options: ``every`` runs a phase
only at steps divisible by it (WGAN-GP's n_critic), and ``lazy_every`` passes ``lazy=True`` to the
loss at such steps, so a lazy regulariser (R1) joins that step's loss and update, as in DDGAN's code.

The NaN guard: every phase's loss (both of a GAN's) is checked every step, on the value the log needs
anyway (``loss.item()``), so the check costs one ``math.isfinite`` per phase (bench/nan_guard.py);
the weights are checked before every checkpoint.  A non-finite value stops the run with one
:class:`Diverged` error naming the model, the step and the last good checkpoint: nothing is published,
the resume state on disk is the last good one, and ``trilemma`` exits non-zero.  There is no switch
to tolerate some non-finite steps: no case was found that needs one (the toy and ci runs meet no
non-finite loss), and skipping steps would hide a real divergence.

Tests inject a non-finite loss with ``TRILEMMA_FAULT_NONFINITE`` (see :func:`inject_faults`); unset,
the phases are not wrapped and the hook costs nothing.

The clock: ``wall_s`` of the log is summed over the runs of a resumed job.  A task with a ``bill``
dict (the distillation bill, ``training/bill.py``: its counters, e.g. teacher evaluations) has it
checkpointed and restored with the rest; at the end the loop sums its counters over the ranks (each
rank counted its slice) and adds ``updates``, ``wall_s`` and ``device`` to it.
"""
from __future__ import annotations

import copy
import json
import math
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

import torch
from torch import nn
from tqdm import tqdm

from trilemma.artifacts import load_state, save_state
from trilemma.training.distributed import context


@dataclass
class Phase:
    """One update: ``loss_fn(batch, generator) -> (loss, logs)`` optimizes ``modules``."""
    name: str
    modules: list[str]
    loss_fn: Callable[[Any, torch.Generator], tuple[torch.Tensor, dict]]
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    every: int = 1             # run this phase at steps divisible by ``every`` only
    lazy_every: int = 0        # > 0: ``loss_fn(batch, generator, lazy=step % lazy_every == 0)``


class Task(Protocol):
    modules: dict[str, nn.Module]
    ema_modules: list[str]
    phases: list[Phase]
    batch_size: int

    def sample_batch(self, generator: torch.Generator) -> Any: ...


@dataclass
class LoopConfig:
    samples: int
    batch_size: int
    warmup_samples: int = 0
    lr_schedule: str = "constant"
    min_lr_ratio: float = 0.0
    ema_decay: float = 0.0
    grad_clip: float | None = None
    checkpoint_every: int = 1000
    log_every: int = 100

    @classmethod
    def from_config(cls, train) -> "LoopConfig":
        """The loop's fields of a training block: a typed one (``schema.models.TRAIN_BLOCKS``, closed,
        read by attribute: the model's default where the profile is silent), or a plain dict, where
        a key that no training block of the config models defines is an error (a typo must not be
        dropped silently)."""
        if isinstance(train, Mapping):
            return cls._from_dict(train)
        return cls(**{k: getattr(train, k) for k in cls.__dataclass_fields__ if k in type(train).model_fields})

    @classmethod
    def _from_dict(cls, train: Mapping) -> "LoopConfig":
        from trilemma.schema.models import TRAIN_BLOCKS
        known = set(cls.__dataclass_fields__).union(*(m.model_fields for m in TRAIN_BLOCKS))
        unknown = sorted(set(train) - known)
        if unknown:
            raise ValueError(f"unknown training key(s) {unknown}; allowed: {sorted(known)}")
        return cls(**{k: v for k, v in train.items() if k in cls.__dataclass_fields__})

    @property
    def total_steps(self) -> int:
        return max(1, self.samples // self.batch_size)


def lr_factor(cfg: LoopConfig, samples_seen: int) -> float:
    """Linear warm-up over ``warmup_samples``, then constant / cosine / linear decay to min_lr_ratio."""
    warm = min(1.0, samples_seen / cfg.warmup_samples) if cfg.warmup_samples else 1.0
    progress = min(1.0, samples_seen / max(1, cfg.samples))
    if cfg.lr_schedule == "cosine":
        decay = cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    elif cfg.lr_schedule == "linear":
        decay = 1 - (1 - cfg.min_lr_ratio) * progress
    else:
        decay = 1.0
    return warm * decay


@dataclass
class _Stop:
    requested: bool = False
    signum: int = 0
    old: dict = field(default_factory=dict)

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested, self.signum = True, signum

    def __exit__(self, *exc):
        for sig, handler in self.old.items():
            signal.signal(sig, handler)


def train(task: Task, cfg: LoopConfig, *, seed: int, resume_dir: Path, fingerprint: str,
          progress: bool = True, desc: str = "train") -> dict[str, dict[str, torch.Tensor]]:
    """Run ``task`` for ``cfg.samples`` samples; return the state dicts to publish (EMA where kept).

    Under torchrun every rank runs this with the same arguments (see ``training/distributed.py``)."""
    ctx = context()
    task.shard = ctx.shard(cfg.batch_size)
    progress = progress and ctx.is_main
    resume_dir = Path(resume_dir)
    resume_dir.mkdir(parents=True, exist_ok=True)
    state_path, log_path = resume_dir / "state.pt", resume_dir / "log.jsonl"
    # ``gen`` draws the global batch and is seeded alike on every rank (each keeps its slice); torch's
    # global generator (dropout masks) is offset by the rank, so the ranks' halves of a batch get
    # independent masks, as in one process (rank 0, and a 1-rank run, keep ``seed``)
    torch.manual_seed(seed + ctx.rank)
    gen = torch.Generator().manual_seed(seed)
    # foreach: one kernel per op over all parameters (PyTorch's default on GPUs only); the same
    # values as the per-parameter loop (checked bitwise on the toy MLP), 4% less time per CPU step
    optims = {ph.name: torch.optim.Adam([p for m in ph.modules for p in task.modules[m].parameters()],
                                        lr=ph.lr, betas=ph.betas, weight_decay=ph.weight_decay, foreach=True)
              for ph in task.phases}
    ema = {m: copy.deepcopy(task.modules[m]).requires_grad_(False) for m in task.ema_modules}
    step, wall_before, saved = 0, 0.0, None   # saved: the step of the last good checkpoint on disk
    bill = getattr(task, "bill", None)
    if state_path.exists():
        state = load_state(state_path)
        if state.get("fingerprint") == fingerprint:
            for name, mod in task.modules.items():
                mod.load_state_dict(state["modules"][name])
            for name, mod in ema.items():
                mod.load_state_dict(state["ema"][name])
            for name, opt in optims.items():
                opt.load_state_dict(state["optims"][name])
            gen.set_state(state["rng"])
            step = saved = int(state["step"])
            wall_before = float(state.get("wall_s", 0.0))
            if bill is not None:
                bill.update(state.get("bill", {}))
            if ctx.is_main:
                _truncate_log(log_path, step)
            print(f"[{desc}] resuming from step {step} ({state_path})", file=sys.stderr)
        else:
            print(f"[{desc}] ignoring resume state of another configuration ({state_path})", file=sys.stderr)
            if ctx.is_main:
                log_path.unlink(missing_ok=True)

    def checkpoint():
        nonlocal saved
        for name, mod in task.modules.items():
            if not all(bool(torch.isfinite(p).all()) for p in mod.parameters()):
                raise Diverged(desc, f"non-finite weights in '{name}'", step, saved, state_path)
        saved = step
        if not ctx.is_main:
            return
        save_state(state_path, {
            "fingerprint": fingerprint, "step": step, "rng": gen.get_state(),
            "wall_s": wall_before + time.perf_counter() - t0, "bill": dict(bill or {}),
            "modules": {n: m.state_dict() for n, m in task.modules.items()},
            "ema": {n: m.state_dict() for n, m in ema.items()},
            "optims": {n: o.state_dict() for n, o in optims.items()}})

    total = cfg.total_steps
    bar = tqdm(total=total, initial=step, desc=desc, disable=not progress, unit="step",
               mininterval=1.0, file=sys.stderr)
    t0 = time.perf_counter()
    phases = inject_faults(task.phases, desc, step)
    ctx.barrier()  # every rank has read the resume state before rank 0 may rewrite it
    with _Stop() as stop, open(log_path if ctx.is_main else os.devnull, "a") as log:
        while step < total:
            factor = lr_factor(cfg, step * cfg.batch_size)
            batch = task.sample_batch(gen)
            logs: dict[str, float] = {}
            for ph in phases:
                if step % ph.every:
                    continue
                opt = optims[ph.name]
                for group in opt.param_groups:
                    group["lr"] = ph.lr * factor
                lazy = {"lazy": step % ph.lazy_every == 0} if ph.lazy_every else {}
                loss, extra = ph.loss_fn(batch, gen, **lazy)
                value = loss.item()   # the log's value, read before the update: the guard is one isfinite
                if not math.isfinite(value):
                    raise Diverged(desc, f"{value} {ph.name} loss", step, saved, state_path)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                ctx.average_gradients(opt.param_groups[0]["params"])
                if cfg.grad_clip:
                    torch.nn.utils.clip_grad_norm_(opt.param_groups[0]["params"], cfg.grad_clip)
                opt.step()
                logs[f"{ph.name}_loss"] = value
                logs.update({f"{ph.name}_{k}": float(v) for k, v in extra.items()})
            with torch.no_grad():
                for name, ema_mod in ema.items():
                    torch._foreach_lerp_(list(ema_mod.parameters()), list(task.modules[name].parameters()),
                                         1.0 - cfg.ema_decay)
                    for be, b in zip(ema_mod.buffers(), task.modules[name].buffers()):
                        be.copy_(b)
            step += 1
            bar.update(1)
            if ctx.is_main and (step % cfg.log_every == 0 or step == total):
                record = {"step": step, "samples_seen": step * cfg.batch_size, "lr_factor": factor,
                          "wall_s": round(wall_before + time.perf_counter() - t0, 3), **logs}
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k.endswith("loss")})
            if step % cfg.checkpoint_every == 0 or stop.requested:
                checkpoint()
            if stop.requested:
                bar.close()
                print(f"[{desc}] interrupted at step {step}; state saved to {state_path}; "
                      f"re-run to resume", file=sys.stderr)
                raise SystemExit(128 + stop.signum)
    bar.close()
    checkpoint()
    if bill is not None:   # the task's counters summed over the ranks (each counted its slice)
        counts = ctx.gather(dict(bill))
        bill.update({k: sum(c[k] for c in counts) for k in bill} if counts else {})
        bill.update(updates=total, wall_s=round(wall_before + time.perf_counter() - t0, 3),
                    device=_device_name(task))
    final = {n: (ema[n] if n in ema else m).state_dict() for n, m in task.modules.items()}
    return final


def _device_name(task: Task) -> str:
    from trilemma.evaluation.timing import device_name
    params = [p for m in task.modules.values() for p in m.parameters()]
    return device_name(params[0].device if params else torch.device("cpu"))


class Diverged(FloatingPointError):
    """A training run met a non-finite loss or weights: one message naming the model (``desc``), the
    step and the last good checkpoint (``trilemma`` prints it and exits non-zero)."""

    def __init__(self, desc: str, what: str, step: int, saved: int | None, state_path: Path):
        last = (f"the last good checkpoint is step {saved}, kept in {state_path} (a re-run resumes from it)"
                if saved is not None else "no checkpoint was written yet (a re-run starts over)")
        super().__init__(f"[{desc}] diverged: {what} at step {step}; nothing published; {last}")
        self.step, self.saved = step, saved


FAULT_ENV = "TRILEMMA_FAULT_NONFINITE"


def inject_faults(phases: list[Phase], desc: str, start: int) -> list[Phase]:
    """Test-only: ``TRILEMMA_FAULT_NONFINITE=MODEL@STEP[:PHASE][=nan|inf]`` makes the loss of ``PHASE``
    (default: every phase) of the run whose ``desc`` ends in ``MODEL`` non-finite at ``STEP``.
    Unset or naming another model, ``phases`` come back unchanged (no per-step cost)."""
    spec = os.environ.get(FAULT_ENV, "")
    spec, _, kind = spec.partition("=")
    model, _, where = spec.partition("@")
    if not model or desc.split()[-1] != model:
        return phases
    at, _, only = where.partition(":")
    bad, at = float(kind or "nan"), int(at)
    return [Phase(**{**ph.__dict__, "loss_fn": _poisoned(ph, bad, at, start)})
            if only in ("", ph.name) else ph for ph in phases]


def _poisoned(ph: Phase, bad: float, at: int, start: int):
    """``ph.loss_fn`` plus ``bad`` at step ``at``: its k-th call (from ``start``) is at the k-th step
    divisible by ``ph.every``."""
    calls = iter(range(-(-start // ph.every) * ph.every, 1 << 62, ph.every))

    def loss_fn(*args, **kwargs):
        loss, extra = ph.loss_fn(*args, **kwargs)
        return (loss + bad if next(calls) == at else loss), extra
    return loss_fn


def _truncate_log(log_path: Path, step: int) -> None:
    """Drop log records written after the checkpoint we resume from (they will be written again)."""
    if log_path.exists():
        keep = [line for line in log_path.read_text().splitlines() if json.loads(line)["step"] <= step]
        log_path.write_text("".join(line + "\n" for line in keep))


def finish(resume_dir: Path) -> str:
    """After the final artifact is written: return the JSONL log text and clear the resume state."""
    resume_dir = Path(resume_dir)
    text = (resume_dir / "log.jsonl").read_text() if (resume_dir / "log.jsonl").exists() else ""
    for f in ("state.pt", "log.jsonl"):
        (resume_dir / f).unlink(missing_ok=True)
    return text
