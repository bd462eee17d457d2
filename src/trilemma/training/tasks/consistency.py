"""Consistency distillation (Song, Dhariwal, Chen & Sutskever 2023, Algorithm 2; methods.md §13.3) of
the distillation teacher, as a task of the one training loop.

Per update, with the discretisation t_1 = eps < ... < t_N = 1 (``diffusion/consistency.py``):
  n ~ U{1, ..., N-1}, x ~ data, z_{t_{n+1}} = alpha x + sigma eps (the VP form of x + t_{n+1} z);
  one deterministic DDIM step of the teacher t_{n+1} -> t_n (the Euler step of the PF-ODE in the
  paper's variables; the paper uses Heun): z^_{t_n};
  loss lambda(t_n) d(f_theta(z_{t_{n+1}}, t_{n+1}), f_theta-(z^_{t_n}, t_n)) with lambda = 1 (the paper's
  CD) and d the squared L2 distance (``l2``) or improved consistency training's pseudo-Huber
  d(x, y) = sqrt(|x - y|^2 + c^2) - c, c = ``huber_c`` * sqrt(dim) (Song & Dhariwal 2023; ``pseudo_huber``);
  theta- <- stopgrad(mu theta- + (1 - mu) theta) after every update (``target_ema``; mu = 0: theta- = theta).

The student and theta- start as copies of the teacher's network (the paper initialises CD from the
teacher).  theta- is a module of the task, so the loop's checkpoints carry it and resume is exact; it is
moved at the start of each update, before the loss (Algorithm 2's order: the move after update k is the
first thing of update k + 1; at update 0 theta- = theta and the move is the identity).  The teacher is
wrapped in :class:`~trilemma.training.bill.CountTeacher`: one evaluation per example per update.
"""
from __future__ import annotations

import copy

import torch

from trilemma.diffusion.consistency import ConsistencyFunction, discretisation
from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import _bcast
from trilemma.sampling.ddim import ddim_step
from trilemma.schema.models import Consistency
from trilemma.training.bill import CountTeacher
from trilemma.training.loop import Phase
from trilemma.training.tasks.guided import labelled_batch


def distance(a: torch.Tensor, b: torch.Tensor, kind: str, huber_c: float) -> torch.Tensor:
    """Per-example d(a, b): squared L2, or pseudo-Huber with c = huber_c * sqrt(dim)."""
    sq = (a - b).flatten(1).pow(2).sum(1)
    if kind == "l2":
        return sq
    if kind == "pseudo_huber":
        c = huber_c * a[0].numel() ** 0.5
        return torch.sqrt(sq + c * c) - c
    raise ValueError(f"unknown consistency distance {kind!r} (l2 | pseudo_huber)")


class ConsistencyDistillTask:
    shard = slice(None)  # set by the loop: this rank's slice of the global batch
    labels = None

    def __init__(self, student: Denoiser, teacher: Denoiser, x0: torch.Tensor, cd: Consistency):
        teacher.requires_grad_(False)
        self.bill: dict = {}   # the distillation bill (training/bill.py): teacher evaluations, counted
        self.teacher = CountTeacher(teacher, self.bill)
        target_net = copy.deepcopy(student.net).requires_grad_(False).eval()
        self.f = ConsistencyFunction(student, cd.t_min)
        self.f_target = ConsistencyFunction(Denoiser(target_net, student.schedule, student.parameterization),
                                            cd.t_min)
        self.grid = discretisation(cd.t_min, cd.points)
        self.mu, self.kind, self.huber_c = cd.target_ema, cd.distance, cd.huber_c
        self.modules = {"net": student.net, "target": target_net}
        self.ema_modules = ["net"] if cd.train.ema_decay else []
        self.x0, self.batch_size = x0, cd.train.batch_size
        self.phases = [Phase("cd", ["net"], self.loss, lr=cd.train.lr)]

    sample_batch = labelled_batch

    @torch.no_grad()
    def move_target(self) -> None:
        """theta- <- mu theta- + (1 - mu) theta (buffers copied)."""
        target, online = self.modules["target"], self.modules["net"]
        torch._foreach_lerp_(list(target.parameters()), list(online.parameters()), 1.0 - self.mu)
        for bt, b in zip(target.buffers(), online.buffers()):
            bt.copy_(b)

    def pairs(self, x: torch.Tensor, gen: torch.Generator):
        """(z at t_{n+1}, t_{n+1}, t_n) of each example (this rank's slice)."""
        n = torch.randint(0, len(self.grid) - 1, (x.shape[0],), generator=gen)
        eps = torch.randn(x.shape, generator=gen)
        x, n, eps = x[self.shard], n[self.shard], eps[self.shard]
        t_hi, t_lo = self.grid[n + 1], self.grid[n]
        alpha, sigma = (_bcast(c, x) for c in self.f.schedule.alpha_sigma(t_hi))
        return alpha * x + sigma * eps, t_hi, t_lo

    @torch.no_grad()
    def target(self, z: torch.Tensor, t_hi: torch.Tensor, t_lo: torch.Tensor) -> torch.Tensor:
        """f_theta-(z^_{t_n}, t_n) after one teacher DDIM step t_{n+1} -> t_n."""
        z_lo, _ = ddim_step(self.teacher, z, t_hi, t_lo)
        return self.f_target(z_lo, t_lo)

    def loss(self, batch, gen: torch.Generator):
        self.move_target()
        x, _ = batch
        z, t_hi, t_lo = self.pairs(x, gen)
        d = distance(self.f(z, t_hi), self.target(z, t_hi, t_lo), self.kind, self.huber_c)
        return d.mean(), {}
