"""Image profiles: train progressive distillation's teacher ``teacher_pd`` on the profile's U-Net, or a
Denoising Diffusion GAN ``ddgan_t<T>_seed<S>`` on the image generator, with the shared loop and the
toy's tasks (the same losses; :mod:`trilemma.training.tasks.images` scales the uint8 batches and puts
the networks on the GPU when there is one).  Publishes EMA weights and model.json like ``train``;
like it, re-launches itself under ``torchrun`` when ``resources.train.gpu`` > 1 (data-parallel, the
global batch unchanged, ``training/distributed.py``).

- ``teacher_pd`` (Salimans & Ho 2022, Sec. 4): continuous time, cosine logSNR, the parameterization
  and weighting of ``distill.teacher``; its model is ``distill.teacher.model`` (a U-Net preset).
- ``teacher_cfg`` (Ho & Salimans 2022, Alg. 1): the same task with the example's label and label
  dropout ``guidance.p_uncond`` (``continuous_teacher`` of the toy's CFG teacher), on the U-Net of
  ``guidance.teacher.model`` with ``num_classes`` from the dataset (null label = ``num_classes``),
  the recipe (schedule, parameterization, weighting) of ``distill.teacher``.
- ``ddgan_t<T>_seed<S>`` (Xiao et al. 2022, Sec. 3): G(x_t, z, t) predicting x0 and
  D(x_{t-1}, x_t, t) from ``ddgan.image_model``, the losses and schedule of ``ddgan``.
  R1: the official penalty is (gamma/2) E ||grad D||^2 over the whole image; the shared DDGAN task
  sums the squared gradient over dimension 1 and averages the rest (one vector per example for 2-D
  points), so for (C, H, W) images it is given gamma * H * W, which is the same penalty.

Resume state lives in results/<profile>/.resume/<model>/, as for every training job."""
from __future__ import annotations

import hashlib
import json
import sys

import torch

from trilemma import config, dag, paths
from trilemma.artifacts import load_tensors
from trilemma.stages import train as train_stage
from trilemma.stages.train import publish
from trilemma.training.distributed import launch
from trilemma.training.loop import LoopConfig, train
from trilemma.training.tasks.images import ImageBatches, on_device, training_device


def add_arguments(p):
    train_stage.add_arguments(p)      # the same arguments as ``trilemma train``; the model is checked in run


def pd_teacher(cfg: dict, tensors: dict, meta: dict, device):
    from trilemma.training.tasks.pd_teacher import pd_teacher_setup
    section, task, model_json = pd_teacher_setup(cfg, tensors, meta)
    on_device(task.denoiser.net, device)
    return cfg["seed"], section, ImageBatches(task, section["train"].get("hflip", False)), model_json


def cfg_teacher(cfg: dict, tensors: dict, meta: dict, device):
    """The class-conditional teacher of classifier-free guidance on images: the toy's
    ``cfg_teacher_setup`` with the U-Net's ``num_classes`` taken from the dataset's metadata (the toy
    counts its grid rows) and written both where the U-Net reads it and where the samplers do."""
    from trilemma.training.tasks.pd_teacher import continuous_teacher
    recipe, g = cfg["distill"]["teacher"], cfg["guidance"]
    classes = int(meta["num_classes"])
    model = {**g["teacher"]["model"], "num_classes": classes,
             "unet": {**g["teacher"]["model"]["unet"], "num_classes": classes}}
    task, model_json = continuous_teacher(recipe, model, g["teacher"]["train"], tensors, meta,
                                          labels=tensors["train_labels"], p_uncond=g["p_uncond"])
    on_device(task.denoiser.net, device)
    section = {"recipe": {k: recipe[k] for k in ("schedule", "parameterization", "weighting")},
               "p_uncond": g["p_uncond"], **g["teacher"]}
    return (cfg["seed"], section, ImageBatches(task, g["teacher"]["train"].get("hflip", False)),
            {"method": "cfg_teacher", "p_uncond": g["p_uncond"], **model_json})


def ddgan(cfg: dict, name: str, tensors: dict, meta: dict, device):
    from trilemma.diffusion.schedules import DiscreteSchedule
    from trilemma.models.ddgan_images import build_discriminator, build_generator
    from trilemma.stages.train_gan import ddgan_schedule
    from trilemma.training.tasks.gan import DDGANTask

    _, steps, seed = paths.parse_gan_model(name)
    section = cfg["ddgan"]
    im, train_cfg = section["image_model"], section["train"]
    model_cfg = {"kind": "unet", "arch": "ddgan_generator", "nz": im["nz"], "generator": im["generator"]}
    torch.manual_seed(seed)
    G = on_device(build_generator(model_cfg, meta["data_dim"]), device)
    D = on_device(build_discriminator(im["discriminator"], meta["data_dim"]), device)
    c, h, w = meta["data_dim"]
    schedule = DiscreteSchedule.from_config(ddgan_schedule(section, steps))
    task = DDGANTask(G, D, schedule, tensors["train"], {**train_cfg, "r1_gamma": train_cfg["r1_gamma"] * h * w})
    model_json = {"method": "ddgan", "model": model_cfg, "schedule": ddgan_schedule(section, steps),
                  "parameterization": "x", "discriminator": im["discriminator"]}
    section = {k: section[k] for k in ("schedule", "image_model", "train")}
    return seed, section, ImageBatches(task, train_cfg.get("hflip", False)), model_json


def run(args):
    cfg = config.load(args.profile)
    parsed = paths.parse_gan_model(args.model)
    if args.model not in ("teacher_pd", "teacher_cfg") and not (parsed and parsed[0] == "ddgan"):
        raise config.ConfigError(f"train-images trains teacher_pd, teacher_cfg or ddgan_t<T>_seed<S>, "
                                 f"not {args.model!r}")
    launch(dag.resources(cfg, "train")["gpu"], sys.argv[1:])   # the rule `train` runs these jobs
    tensors, meta = load_tensors(args.data)
    if not meta.get("image"):
        raise config.ConfigError(f"{args.data}: train-images trains on image datasets; use `trilemma train`")
    device = training_device()
    torch.manual_seed(cfg["seed"])
    if args.model == "teacher_pd":
        seed, section, task, model_json = pd_teacher(cfg, tensors, meta, device)
    elif args.model == "teacher_cfg":
        seed, section, task, model_json = cfg_teacher(cfg, tensors, meta, device)
    else:
        seed, section, task, model_json = ddgan(cfg, args.model, tensors, meta, device)
    fingerprint = hashlib.sha256(json.dumps(
        {"model": args.model, "seed": seed, "section": section, "data": meta}, sort_keys=True).encode()).hexdigest()
    resume = paths.resume_dir(cfg["profile"], args.model)
    final = train(task, LoopConfig.from_config(section["train"]), seed=seed, resume_dir=resume,
                  fingerprint=fingerprint, progress=not args.no_progress, desc=f"train {args.model}")
    weights = final["net"] if "net" in final else final["G"]
    model_json = {"name": args.model, **model_json, "data_dim": meta["data_dim"], "dataset": meta["dataset"],
                  "train": section["train"], "seed": seed, "weights": "ema"}
    publish(args.out, weights, model_json, resume)
