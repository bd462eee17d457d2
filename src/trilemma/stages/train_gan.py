"""Train a Denoising Diffusion GAN (Xiao, Kreis & Vahdat 2022) or a GAN baseline of its Figure 6
(vanilla non-saturating GAN, WGAN-GP) with the shared loop; publish G's EMA weights and model.json.

The networks work in the GAN path's own units (:func:`data_units`): the training points are multiplied
by k = ``ddgan.model.scale_ref`` / the data artifact's spread on the way in (:func:`build_task`) and the
samplers divide by k on the way out (``sampling/ddgan.py``, ``sampling/gan.py``; k is in model.json).

On image profiles the DDGAN is G(x_t, z, t) predicting x0 and D(x_{t-1}, x_t, t) from
``ddgan.image_model`` (:func:`image_task`), the same task and losses.  Like every training verb it
re-launches itself under ``torchrun`` when ``resources.train.gpu`` > 1.  R1: the official penalty
is (gamma/2) E ||grad D||^2 over the whole image; the shared DDGAN task sums the squared gradient over
dimension 1 and averages the rest (one vector per example for 2-D points), so for (C, H, W) images it
is given gamma * H * W, which is the same penalty.

The model id carries what the DAG varies (T and the training seed); every hyperparameter comes from
the ``ddgan`` section of the config.  A diverging run (non-finite loss or weights) stops with a
message; the last good resume checkpoint is kept and no model file is written.
"""
from __future__ import annotations

import sys

import torch

from trilemma import config, paths
from trilemma.artifacts import load_tensors
from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.models.gan import DDGANDiscriminator, GANDiscriminator
from trilemma.models.registry import build_model
from trilemma.schema.models import Config, Ddgan
from trilemma.training.distributed import launch
from trilemma.training.loop import LoopConfig
from trilemma.training.runner import run_training
from trilemma.training.tasks.gan import DDGANTask, GANTask, WGANGPTask


def ddgan_schedule(section: Ddgan, steps: int) -> dict:
    """The model.json entry of the VP chain with ``steps`` steps (``ddgan.schedule``)."""
    return {"name": "vp_sde", "beta_min": section.schedule.beta_min, "beta_max": section.schedule.beta_max,
            "num_steps": steps}


def data_units(section: Ddgan, meta: dict) -> float:
    """k = ``model.scale_ref`` / ``meta["scale"]``: the factor from data coordinates to the units of the DDGAN
    and of the GAN baselines alike, in which the data's spread (``data.toy2d.data_scale``) is the one
    the recipe was tuned at (the default grid's).  Every scale-dependent choice of the recipe then meets
    the data as tuned: the Fourier octaves' frequencies, the VP chain's noise levels relative to the
    data (the official DDGAN code scales images to [-1, 1]), the R1 weight (a gradient in x, Eq. 9's
    regulariser) and G's output range.  1 where either is absent (images; ``scale_ref`` unset); exactly
    1 on the default grid, whose results are therefore unchanged bit for bit."""
    ref = section.model.scale_ref if section.model is not None else None   # images: no ddgan.model
    scale = meta.get("scale")
    return ref / scale if ref and scale else 1.0


def build_task(method: str, steps: int, section: Ddgan, x0: torch.Tensor, data_dim: int, units: float = 1.0):
    """The task and the ``model`` entry of model.json (what rebuilds G): G is built from that very
    entry by :func:`~trilemma.models.registry.build_model`, the one place a generator is constructed.
    The task trains on ``units * x0`` (:func:`data_units`)."""
    m, train = section.model, section.train
    x0 = x0 * units
    if method == "ddgan":
        model_cfg = {"kind": "ddgan_generator", **m.plain()}
        G = build_model(model_cfg, data_dim)   # the one construction, also what rebuilds G from model.json
        D = DDGANDiscriminator(data_dim, m.hidden, m.layers, m.emb_dim, m.d_fourier)
        schedule = DiscreteSchedule.from_config(ddgan_schedule(section, steps))
        return DDGANTask(G, D, schedule, x0, train), model_cfg
    model_cfg = {"kind": "gan_generator", "nz": m.nz, "hidden": m.hidden, "layers": m.layers}
    G = build_model(model_cfg, data_dim)
    D = GANDiscriminator(data_dim, m.hidden, m.layers, m.d_fourier)
    task = GANTask(G, D, x0, train) if method == "gan" else WGANGPTask(G, D, x0, train, section.baselines.wgan_gp)
    return task, model_cfg


def point_task(method: str, steps: int, section: Ddgan, tensors: dict, meta: dict, place):
    """2-D profiles: (task, model.json fields, what the fingerprint holds of the config)."""
    units = data_units(section, meta)
    task, model_cfg = build_task(method, steps, section, tensors["train"], meta["data_dim"], units)
    model_json = {"method": method, "model": model_cfg,
                  "schedule": ddgan_schedule(section, steps) if method == "ddgan" else None,
                  "parameterization": "x" if method == "ddgan" else "implicit"}
    return task, model_json, section.plain(), {"data_units": units}


def image_task(method: str, steps: int, section: Ddgan, tensors: dict, meta: dict, place):
    """Image profiles: the DDGAN's G and D of ``ddgan.image_model`` (placed by the modality)."""
    from trilemma.models.ddgan_images import build_discriminator, build_generator

    if method != "ddgan":
        raise config.ConfigError(f"image profiles train DDGANs, not {method!r}")
    im, train, data_dim = section.image_model, section.train, meta["data_dim"]
    model_cfg = {"kind": "unet", "arch": "ddgan_generator", "nz": im.nz, "generator": im.generator.plain()}
    G = place(build_generator(model_cfg, data_dim))
    D = place(build_discriminator(im.discriminator.plain(), data_dim))
    c, h, w = data_dim
    schedule = DiscreteSchedule.from_config(ddgan_schedule(section, steps))
    task = DDGANTask(G, D, schedule, tensors["train"], train.model_copy(update={"r1_gamma": train.r1_gamma * h * w}))
    plain = section.plain()
    return task, {"method": "ddgan", "model": model_cfg, "schedule": ddgan_schedule(section, steps),
                  "parameterization": "x", "discriminator": im.discriminator.plain()}, \
        {k: plain[k] for k in ("schedule", "image_model", "train")}, {}


def run_gan(args, cfg: Config, mod) -> None:
    method, steps, seed = paths.parse_gan_model(args.model)
    section = cfg.ddgan
    launch(cfg.resource("train").gpu, sys.argv[1:])
    tensors, meta = load_tensors(args.data)
    torch.manual_seed(seed)
    task, model_json, what, extra = (image_task if mod.image else point_task)(method, steps, section, tensors, meta,
                                                                             mod.place)
    if method == "wgan_gp":
        extra["wgan_gp"] = section.baselines.wgan_gp.plain()
    run_training(cfg.profile, args.model, mod.batches(task, section.train.hflip),
                 LoopConfig.from_config(section.train), seed=seed, out=args.out, progress=not args.no_progress,
                 what={"model": args.model, "seed": seed, "section": what, "data": meta}, weights="G",
                 describe=lambda final: {"name": args.model, **model_json, "data_dim": meta["data_dim"],
                                         "dataset": meta["dataset"], "train": section.train.plain(), "seed": seed,
                                         "weights": "ema", **extra})
