"""The continuous-time teacher of progressive distillation (Salimans & Ho 2022, Sec. 4 and Table 1):
t ~ U[0, 1], z_t = alpha_t x + sigma_t eps on the cosine logSNR schedule, a network in one of the
parameterizations x | eps | v | both, and an x-space reconstruction loss with weight

  snr:          SNR * ||x - x_hat||^2        = ||eps - eps_hat||^2
  snr_trunc:    max(SNR, 1) * ||x - x_hat||^2 = max(||x - x_hat||^2, ||eps - eps_hat||^2)
  snr_plus_one: (SNR + 1) * ||x - x_hat||^2  = ||v - v_hat||^2

computed, as in the reference ``dpm.py``, from per-example means (``snr_trunc`` takes the max of the
two per-example means).  Defaults: x with truncated SNR, the paper's recommendation.

With ``labels`` the same task trains the class-conditional teacher of classifier-free guidance (Ho &
Salimans 2022, Alg. 1): each example's label is replaced by the null label (``num_classes``) with
probability ``p_uncond``, so one network learns eps(z, c) and eps(z, ∅).  The label dropout is drawn
after t and eps, so the unconditional teacher consumes the same random numbers as before."""
from __future__ import annotations

import torch

from trilemma.diffusion.denoiser import Denoiser
from trilemma.diffusion.schedules import _bcast
from trilemma.schema.models import Config, DistillTeacher, Train
from trilemma.training.loop import Phase

WEIGHTINGS = ("snr", "snr_trunc", "snr_plus_one")


def _mean_per_example(e: torch.Tensor) -> torch.Tensor:
    return e.pow(2).reshape(e.shape[0], -1).mean(1)


def weighted_loss(x, x_hat, eps, eps_hat, alpha, sigma, weighting: str) -> torch.Tensor:
    """The batch mean of the weighted reconstruction loss; alpha, sigma broadcast against x."""
    if weighting == "snr":
        per = _mean_per_example(eps - eps_hat)
    elif weighting == "snr_trunc":
        per = torch.maximum(_mean_per_example(x - x_hat), _mean_per_example(eps - eps_hat))
    elif weighting == "snr_plus_one":
        per = _mean_per_example((alpha * eps - sigma * x) - (alpha * eps_hat - sigma * x_hat))
    else:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    return per.mean()


class PDTeacherTask:
    shard = slice(None)  # set by the loop: this rank's slice of the global batch

    def __init__(self, denoiser: Denoiser, x0: torch.Tensor, train: Train, weighting: str,
                 labels: torch.Tensor | None = None, p_uncond: float = 0.0):
        if weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        self.denoiser, self.weighting = denoiser, weighting
        self.labels, self.p_uncond = labels, p_uncond
        self.modules = {"net": denoiser.net}
        self.ema_modules = ["net"]
        self.x0, self.batch_size = x0, train.batch_size
        self.phases = [Phase("denoise", ["net"], self.loss, lr=train.lr, weight_decay=train.weight_decay)]

    def sample_batch(self, gen: torch.Generator):
        idx = torch.randint(0, self.x0.shape[0], (self.batch_size,), generator=gen)
        return self.x0[idx], (None if self.labels is None else self.labels[idx])

    def loss(self, batch, gen: torch.Generator):
        x, y = batch
        sched = self.denoiser.schedule
        t = torch.rand(x.shape[0], generator=gen, dtype=torch.float64)
        eps = torch.randn(x.shape, generator=gen)
        cond = None
        if y is not None:
            drop = torch.rand(x.shape[0], generator=gen) < self.p_uncond
            cond = {"y": torch.where(drop, self.denoiser.net.num_classes, y)[self.shard]}
        x, t, eps = x[self.shard], t[self.shard], eps[self.shard]  # this rank's slice
        alpha, sigma = (_bcast(c, x) for c in sched.alpha_sigma(t))
        z = alpha * x + sigma * eps
        x_hat, eps_hat = self.denoiser(z, t, cond)
        return weighted_loss(x, x_hat, eps, eps_hat, alpha, sigma, self.weighting), {}


def pd_teacher_setup(cfg: Config, tensors: dict, meta: dict):
    """(training block, the config values its fingerprint holds, task, model.json fields) of the
    distillation teacher ``teacher_pd`` (``distill.teacher``)."""
    section = cfg.distill.teacher
    task, model_json = continuous_teacher(section, section.model.plain(), section.train, tensors, meta)
    return section.train, section.plain(), task, {"method": "pd_teacher", **model_json}


def cfg_teacher_setup(cfg: Config, tensors: dict, meta: dict):
    """(training block, the config values its fingerprint holds, task, model.json fields) of
    ``teacher_cfg``: the distillation teacher's recipe (schedule, parameterization, weighting of
    ``distill.teacher``) with a label embedding and label dropout ``guidance.p_uncond`` (classifier-free
    guidance, Ho & Salimans 2022, Alg. 1).  The number of classes: the dataset's (images) or the toy's
    grid rows, written where a U-Net reads it too (the null label is ``num_classes``)."""
    recipe, g = cfg.distill.teacher, cfg.guidance
    num_classes = int(meta["num_classes"]) if "num_classes" in meta else int(tensors["mode_labels"].max()) + 1
    model = {**g.teacher.model.plain(), "num_classes": num_classes}
    if "unet" in model:
        model["unet"] = {**model["unet"], "num_classes": num_classes}
    task, model_json = continuous_teacher(recipe, model, g.teacher.train, tensors, meta,
                                          labels=tensors["train_labels"], p_uncond=g.p_uncond)
    plain = recipe.plain()
    section = {"recipe": {k: plain[k] for k in ("schedule", "parameterization", "weighting")},
               "p_uncond": g.p_uncond, **g.teacher.plain()}
    return g.teacher.train, section, task, {"method": "cfg_teacher", "p_uncond": g.p_uncond, **model_json}


def continuous_teacher(recipe: DistillTeacher, model: dict, train: Train, tensors: dict, meta: dict, **cond):
    """The task and model.json fields of a continuous-time teacher of ``recipe`` (schedule,
    parameterization, weighting) on the network ``model`` (a model.json entry, plain data),
    optionally class-conditional (``labels``, ``p_uncond``)."""
    from trilemma.diffusion.denoiser import OUTPUTS
    from trilemma.diffusion.schedules import schedule_from_config
    from trilemma.models.registry import build_model

    param, schedule = recipe.parameterization, recipe.schedule.plain()
    net = build_model(model, meta["data_dim"], meta["data_dim"] * OUTPUTS[param])
    denoiser = Denoiser(net, schedule_from_config(schedule), param)
    task = PDTeacherTask(denoiser, tensors["train"], train, recipe.weighting, **cond)
    return task, {"model": model, "schedule": schedule, "parameterization": param, "weighting": recipe.weighting}
