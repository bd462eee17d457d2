"""One round of progressive distillation (Salimans & Ho 2022, Algorithm 2; reference ``dpm.py``
``training_losses`` with ``teacher`` set): a student with N steps, initialised as a copy of its
2N-step teacher, learns to match two teacher DDIM steps with one of its own.

  i ~ U{1..N}, t = i / N, z_t = alpha_t x + sigma_t eps;
  two deterministic teacher DDIM steps (the sampler's own ``ddim_step``, eta = 0, no clipping):
    t -> t' = t - 0.5/N -> t'' = t - 1/N;
  target x~ = (z_t'' - (sigma_t''/sigma_t) z_t) / (alpha_t'' - (sigma_t''/sigma_t) alpha_t), the x_hat
  that makes one student DDIM step t -> t'' land on z_t''; at the last step (t'' = 0) the target is
  the teacher's x_hat at z_t';
  loss w(lambda_t) ||x~ - x_hat_student(z_t)||^2 with the teacher's weighting (eps~ from x~ and z_t).

No EMA (the round's task keeps none) and the learning rate is annealed linearly to 0 within the round
by the loop's ``linear`` schedule.

Stage two of guided distillation (Meng et al. 2023, Sec. 4.2, Algorithm 2) is this same task on a
w-conditioned model: with ``labels`` and ``w_range`` each example also draws w ~ U[w_min, w_max] and
carries its class label, and teacher and student see the same ``cond = {y, w}``.  With
``half_grid`` the student also learns its step t -> t - 1/N from the half-grid times t = j/2N (our
reading of the paper's Algorithm 3, "edge cases" of the stochastic sampler, whose jumps start off
the grid of the model that takes them): the teacher is still only evaluated on its own grid.
``w_ends`` (``guidance.stage1.w_ends``) puts that share of the examples at w_min or w_max exactly;
``last_step`` (``guidance.rounds.last_step``) puts that share of the batch at the student's last step
t = 1/N, the rest i ~ U{1..N} as in Algorithm 2 (our choice, the paper samples i uniformly: the guided
students lose their class consistency in that step, measured in params.yaml).
"""
from __future__ import annotations

import torch

from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import _bcast
from trilemma.sampling.ddim import ddim_step
from trilemma.schema.models import GuidedRounds, Rounds
from trilemma.training.bill import CountTeacher
from trilemma.training.loop import Phase
from trilemma.training.tasks.guided import guidance_cond, labelled_batch
from trilemma.training.tasks.pd_teacher import weighted_loss


@torch.no_grad()
def distillation_target(teacher: Denoiser, z_t: torch.Tensor, t: torch.Tensor, steps: int, cond=None):
    """x~ of Algorithm 2 for per-example student times ``t`` (float64, i/N on the student's grid or
    j/2N on its half grid) and ``z_t`` at t.  Where t - 1/N reaches 0 the target is the teacher's x^
    after its step to t - 0.5/N (PD's last step); where t - 0.5/N reaches 0 (t = 1/2N, half grid
    only) it is the teacher's x^ at z_t itself."""
    sched = teacher.schedule
    t1, t2 = (t - 0.5 / steps).clamp(min=0.0), (t - 1.0 / steps).clamp(min=0.0)
    z1, x_first = ddim_step(teacher, z_t, t, t1, cond=cond)
    z2, x_last = ddim_step(teacher, z1, t1, t2, cond=cond)
    (a_t, s_t), (a_2, s_2) = sched.alpha_sigma(t), sched.alpha_sigma(t2)
    ratio = s_2 / s_t
    x_tilde = (z2 - _bcast(ratio, z2) * z_t) / _bcast(a_2 - ratio * a_t, z2)
    shape = (-1, *([1] * (z2.ndim - 1)))
    last, first = ((u <= 1e-12).to(z2.device).reshape(shape) for u in (t2, t1))
    return torch.where(first, x_first, torch.where(last, x_last, x_tilde))


class DistillTask:
    shard = slice(None)  # set by the loop: this rank's slice of the global batch

    def __init__(self, student: Denoiser, teacher: Denoiser, x0: torch.Tensor, rounds: Rounds | GuidedRounds,
                 steps: int, weighting: str, labels: torch.Tensor | None = None,
                 w_range: tuple[float, float] | None = None, half_grid: bool = False,
                 w_ends: float = 0.0, last_step: float = 0.0):
        self.student, self.teacher, self.steps, self.weighting = student, teacher, steps, weighting
        self.labels, self.w_range, self.w_ends, self.last_step = labels, w_range, w_ends, last_step
        self.grid = 2 * steps if half_grid else steps
        teacher.requires_grad_(False)
        self.bill: dict = {}   # the distillation bill (training/bill.py): teacher evaluations, counted
        self.teacher = CountTeacher(teacher, self.bill)
        self.modules = {"net": student.net}
        self.ema_modules: list[str] = []
        self.x0, self.batch_size = x0, rounds.batch_size
        self.phases = [Phase("distill", ["net"], self.loss, lr=rounds.round_value("lr", steps))]

    sample_batch = labelled_batch

    def loss(self, batch, gen: torch.Generator):
        x, y = batch
        sched = self.student.schedule
        i = torch.randint(1, self.grid + 1, (x.shape[0],), generator=gen)
        if self.last_step:   # this share of the batch at the student's last step t = 1/N (guided rounds)
            i = torch.where(torch.rand(x.shape[0], generator=gen) < self.last_step, self.grid // self.steps, i)
        eps = torch.randn(x.shape, generator=gen)
        cond = guidance_cond(y, self.w_range, gen, self.shard, self.w_ends)
        x, i, eps = x[self.shard], i[self.shard], eps[self.shard]  # this rank's slice
        t = i.double() / self.grid
        alpha, sigma = (_bcast(c, x) for c in sched.alpha_sigma(t))
        z_t = alpha * x + sigma * eps
        x_tilde = distillation_target(self.teacher, z_t, t, self.steps, cond)
        eps_tilde = (z_t - alpha * x_tilde) / sigma
        x_hat, eps_hat = self.student(z_t, t, cond)
        return weighted_loss(x_tilde, x_hat, eps_tilde, eps_hat, alpha, sigma, self.weighting), {}
