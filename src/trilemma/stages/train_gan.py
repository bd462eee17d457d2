"""Train a Denoising Diffusion GAN (Xiao, Kreis & Vahdat 2022) or a GAN baseline of its Figure 6
(vanilla non-saturating GAN, WGAN-GP) with the shared loop; publish G's EMA weights and model.json.

The networks work in the GAN path's own units (:func:`data_units`): the training points are multiplied
by k = ``ddgan.model.scale_ref`` / the data artifact's spread on the way in (:func:`build_task`) and the
samplers divide by k on the way out (``sampling/ddgan.py``, ``sampling/gan.py``; k is in model.json).

The model id carries what the DAG varies (T and the training seed); every hyperparameter comes from
the ``ddgan`` section of the config.  A diverging run (non-finite loss or weights) stops with a
message; the last good resume checkpoint is kept and no model file is written.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from trilemma import paths
from trilemma.artifacts import load_tensors, save_model
from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.models.gan import DDGANDiscriminator, GANDiscriminator
from trilemma.models.registry import build_model
from trilemma.training.loop import LoopConfig, finish, train
from trilemma.training.tasks.gan import DDGANTask, GANTask, WGANGPTask


def ddgan_schedule(section: dict, steps: int) -> dict:
    return {"name": "vp_sde", "beta_min": section["schedule"]["beta_min"],
            "beta_max": section["schedule"]["beta_max"], "num_steps": steps}


def data_units(section: dict, meta: dict) -> float:
    """k = ``model.scale_ref`` / ``meta["scale"]``: the factor from data coordinates to the units of the DDGAN
    and of the GAN baselines alike, in which the data's spread (``data.toy2d.data_scale``) is the one
    the recipe was tuned at (the default grid's).  Every scale-dependent choice of the recipe then meets
    the data as tuned: the Fourier octaves' frequencies, the VP chain's noise levels relative to the
    data (the official DDGAN code scales images to [-1, 1]), the R1 weight (a gradient in x, Eq. 9's
    regulariser) and G's output range.  1 where either is absent (images; ``scale_ref`` unset); exactly
    1 on the default grid, whose results are therefore unchanged bit for bit."""
    ref, scale = section.get("model", {}).get("scale_ref"), meta.get("scale")
    return ref / scale if ref and scale else 1.0


def build_task(method: str, steps: int, section: dict, x0: torch.Tensor, data_dim: int, units: float = 1.0):
    """The task and the ``model`` entry of model.json (what rebuilds G): G is built from that very
    entry by :func:`~trilemma.models.registry.build_model`, the one place a generator is constructed.
    The task trains on ``units * x0`` (:func:`data_units`)."""
    m, train_cfg = section["model"], section["train"]
    x0 = x0 * units
    if method == "ddgan":
        model_cfg = {"kind": "ddgan_generator", **m}
        G = build_model(model_cfg, data_dim)   # the one construction, also what rebuilds G from model.json
        D = DDGANDiscriminator(data_dim, m["hidden"], m["layers"], m["emb_dim"], m["d_fourier"])
        schedule = DiscreteSchedule.from_config(ddgan_schedule(section, steps))
        return DDGANTask(G, D, schedule, x0, train_cfg), model_cfg
    model_cfg = {"kind": "gan_generator", **{k: m[k] for k in ("nz", "hidden", "layers")}}
    G = build_model(model_cfg, data_dim)
    D = GANDiscriminator(data_dim, m["hidden"], m["layers"], m["d_fourier"])
    task = (GANTask(G, D, x0, train_cfg) if method == "gan"
            else WGANGPTask(G, D, x0, train_cfg, section["baselines"]["wgan_gp"]))
    return task, model_cfg


def run_gan(args, cfg: dict) -> None:
    method, steps, seed = paths.parse_gan_model(args.model)
    section = cfg["ddgan"]
    tensors, meta = load_tensors(args.data)
    torch.manual_seed(seed)
    units = data_units(section, meta)
    task, model_cfg = build_task(method, steps, section, tensors["train"], meta["data_dim"], units)
    fingerprint = hashlib.sha256(json.dumps(
        {"model": args.model, "section": section, "data": meta}, sort_keys=True).encode()).hexdigest()
    resume = paths.resume_dir(cfg["profile"], args.model)
    final = train(task, LoopConfig.from_config(section["train"]), seed=seed, resume_dir=resume,
                  fingerprint=fingerprint, progress=not args.no_progress, desc=f"train {args.model}")
    model_json = {"name": args.model, "method": method, "model": model_cfg,
                  "schedule": ddgan_schedule(section, steps) if method == "ddgan" else None,
                  "parameterization": "x" if method == "ddgan" else "implicit",
                  "data_dim": meta["data_dim"], "dataset": meta["dataset"], "train": section["train"],
                  "seed": seed, "weights": "ema", "data_units": units}
    if method == "wgan_gp":
        model_json["wgan_gp"] = section["baselines"]["wgan_gp"]
    save_model(args.out, final["G"], model_json)
    Path(args.out).with_name("train_log.jsonl").write_text(finish(resume))
    print(f"wrote {args.out}")
