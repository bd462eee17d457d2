"""Tasks of guidance and its distillation.

- :class:`GuidedStudentTask`, stage one of guided distillation (Meng et al. 2023, Sec. 4.1,
  Algorithm 1): a student x^_eta1(z_t, w, c), initialised from the CFG teacher (its new w embedding
  starts at zero, ``models/mlp.py``), regresses onto the guided teacher
  x^w = (1 + w) x^(z_t, c) - w x^(z_t, ∅) at the same z_t and w, with w ~ U[w_min, w_max],
  t ~ U[0, 1], z_t from real data (a share ``w_ends`` of the examples at w_min or w_max exactly), and the teacher's weighting (``weighted_loss`` with
  eps~ = (z_t - alpha x~) / sigma; the paper leaves omega(lambda) unspecified).  The label c is
  the example's own class (the paper drops c from its notation); w is one draw per example.
- :class:`NoisyClassifierTask`, the noise-conditional classifier of classifier guidance (Dhariwal &
  Nichol 2021, Sec. 4): cross-entropy of p_phi(y | z_t, t) on z_t = alpha_t x + sigma_t eps,
  t ~ U[0, 1] on the guided model's schedule; the classifier sees alpha_t z_t
  (``sampling/guidance.py``, :func:`~trilemma.sampling.guidance.classifier_input`).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from trilemma.diffusion.schedules import _bcast
from trilemma.sampling.guidance import classifier_input
from trilemma.schema.models import Config, Stage1, Train
from trilemma.training.bill import CountTeacher
from trilemma.training.loop import Phase
from trilemma.training.tasks.pd_teacher import weighted_loss


def labelled_batch(self, gen: torch.Generator):
    """(x, y) drawn together (y None when the task has no labels): shared by the tasks below and
    :class:`~trilemma.training.tasks.distill.DistillTask`."""
    idx = torch.randint(0, self.x0.shape[0], (self.batch_size,), generator=gen)
    return self.x0[idx], (None if self.labels is None else self.labels[idx])


def guidance_cond(y: torch.Tensor | None, w_range: tuple[float, float] | None, gen: torch.Generator,
                  shard=slice(None), w_ends: float = 0.0) -> dict | None:
    """``{y, w}`` with w ~ U[w_min, w_max] per example (Algorithm 1 and 2), this rank's slice;
    None for an unconditional task.  With ``w_ends`` > 0 that share of the examples takes w = w_min or
    w_max exactly (half each), the rest stay uniform (``guidance.stage1.w_ends``: our choice, the paper
    samples w uniformly; the uniform draw's error is largest at the ends of the range)."""
    if y is None:
        return None
    cond = {"y": y[shard]}
    if w_range is not None:
        lo, hi = w_range
        u = torch.rand(y.shape[0], generator=gen)
        if w_ends:
            v = torch.rand(y.shape[0], generator=gen)
            u = torch.where(v < w_ends / 2, 0.0, torch.where(v < w_ends, 1.0, u))
        cond["w"] = (lo + (hi - lo) * u)[shard]
    return cond


def _noisy(schedule, x: torch.Tensor, gen: torch.Generator):
    t = torch.rand(x.shape[0], generator=gen, dtype=torch.float64)
    eps = torch.randn(x.shape, generator=gen)
    alpha, sigma = (_bcast(c, x) for c in schedule.alpha_sigma(t))
    return t, alpha, sigma, alpha * x + sigma * eps


class GuidedStudentTask:
    shard = slice(None)  # set by the loop: this rank's slice of the global batch

    def __init__(self, student, guided_teacher, x0: torch.Tensor, labels: torch.Tensor, stage1: Stage1,
                 weighting: str):
        self.student, self.weighting = student, weighting
        self.w_range, self.w_ends = (stage1.w_min, stage1.w_max), stage1.w_ends
        guided_teacher.requires_grad_(False)
        self.bill: dict = {}   # the distillation bill (training/bill.py): CFG's two passes counted
        guided_teacher.denoiser = CountTeacher(guided_teacher.denoiser, self.bill)
        self.teacher = guided_teacher
        self.modules = {"net": student.net}
        self.ema_modules = ["net"]   # ema_decay = 0: the raw weights
        self.x0, self.labels, self.batch_size = x0, labels, stage1.train.batch_size
        self.phases = [Phase("guided", ["net"], self.loss, lr=stage1.train.lr)]

    sample_batch = labelled_batch

    def loss(self, batch, gen: torch.Generator):
        x, y = batch
        t, alpha, sigma, z = _noisy(self.student.schedule, x, gen)
        cond = guidance_cond(y, self.w_range, gen, self.shard, self.w_ends)
        sl = self.shard
        x, t, alpha, sigma, z = x[sl], t[sl], alpha[sl], sigma[sl], z[sl]
        with torch.no_grad():
            x_tilde, _ = self.teacher(z, t, cond)
        eps_tilde = (z - alpha * x_tilde) / sigma
        x_hat, eps_hat = self.student(z, t, cond)
        return weighted_loss(x_tilde, x_hat, eps_tilde, eps_hat, alpha, sigma, self.weighting), {}


class NoisyClassifierTask:
    shard = slice(None)

    def __init__(self, classifier, schedule, x0: torch.Tensor, labels: torch.Tensor, train: Train):
        self.schedule, self.x0, self.labels, self.batch_size = schedule, x0, labels, train.batch_size
        self.modules = {"net": classifier}
        self.ema_modules = ["net"]
        self.phases = [Phase("classify", ["net"], self.loss, lr=train.lr)]

    sample_batch = labelled_batch

    def loss(self, batch, gen: torch.Generator):
        x, y = batch
        t, _, _, z = _noisy(self.schedule, x, gen)
        z, t, y = z[self.shard], t[self.shard], y[self.shard]
        logits = self.modules["net"](*classifier_input(self.schedule, z, t))
        return F.cross_entropy(logits, y), {"acc": (logits.argmax(1) == y).float().mean()}


def classifier_setup(cfg: Config, tensors: dict, meta: dict):
    """(training block, the config values its fingerprint holds, task, model.json fields) of
    ``classifier_cg`` (``guidance.classifier``, 2-D profiles): an MLP with one logit per class on the
    guided model's schedule (``distill.teacher.schedule``, the CFG teacher's)."""
    from trilemma.diffusion.schedules import schedule_from_config
    from trilemma.models.registry import build_model

    section, schedule = cfg.guidance.classifier, cfg.distill.teacher.schedule.plain()
    num_classes = int(tensors["mode_labels"].max()) + 1
    net = build_model(section.model.plain(), meta["data_dim"], num_classes)
    task = NoisyClassifierTask(net, schedule_from_config(schedule), tensors["train"], tensors["train_labels"],
                               section.train)
    model_json = {"method": "noisy_classifier", "model": section.model.plain(), "out_dim": num_classes,
                  "schedule": schedule, "parameterization": None}
    return section.train, {"schedule": schedule, **section.plain()}, task, model_json
