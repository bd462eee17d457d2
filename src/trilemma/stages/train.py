"""Train a model with the shared loop (:mod:`trilemma.training.runner`) and publish its EMA weights
(safetensors) and model.json; one verb for 2-D and image profiles (:mod:`trilemma.modality` puts the
networks on the GPU and scales the uint8 image batches).

Resume state lives in results/<profile>/.resume/<model>/; a killed run continues from its last
checkpoint when re-run with the same configuration.  With ``resources.train.gpu`` > 1 the verb
re-launches itself under ``torchrun`` (data-parallel, the global batch unchanged,
``training/distributed.py``).  Models:

- ``teacher_ddpm`` (Ho et al. 2020, Alg. 1) on ``teacher.model``;
- ``teacher_pd`` (Salimans & Ho 2022, Sec. 4): continuous time, cosine logSNR, the parameterization
  and weighting of ``distill.teacher``;
- ``teacher_cfg`` (Ho & Salimans 2022, Alg. 1): the same task with the example's label and label
  dropout ``guidance.p_uncond``;
- ``classifier_cg``: the noisy classifier of classifier guidance (2-D profiles);
- the Denoising Diffusion GAN ``ddgan_t<T>_seed<S>`` and the GAN baselines ``gan_seed<S>``,
  ``wgan_gp_seed<S>`` (:mod:`trilemma.stages.train_gan`)."""
from __future__ import annotations

import argparse
import sys

import torch

from trilemma import config, modality, paths
from trilemma.artifacts import load_tensors
from trilemma.schema.models import Config
from trilemma.training.distributed import launch
from trilemma.training.loop import LoopConfig
from trilemma.training.runner import run_training

MODELS = ("teacher_ddpm", "teacher_pd", "teacher_cfg", "classifier_cg")


def model_name(name: str) -> str:
    if name in MODELS or paths.parse_gan_model(name):
        return name
    raise argparse.ArgumentTypeError(
        f"unknown model {name!r}: one of {MODELS}, ddgan_t<T>_seed<S>, gan_seed<S>, wgan_gp_seed<S>")


def add_arguments(p):
    p.add_argument("--model", required=True, type=model_name, help="which model to train")
    p.add_argument("--data", required=True, help="dataset .safetensors from fetch-data")
    p.add_argument("--out", required=True, help="output model.safetensors (model.json is written beside it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def ddpm_teacher_setup(cfg: Config, tensors: dict, meta: dict):
    """(training block, the config values its fingerprint holds, task, model.json fields) of the DDPM
    teacher ``teacher_ddpm`` (``teacher``)."""
    from trilemma.diffusion.schedules import DiscreteSchedule
    from trilemma.models.registry import build_model
    from trilemma.training.tasks.ddpm import DDPMTask

    section = cfg.teacher
    model, schedule = section.model.plain(), section.schedule.plain()
    net = build_model(model, meta["data_dim"])
    task = DDPMTask(net, DiscreteSchedule.from_config(schedule), tensors["train"], section.train)
    return section.train, section.plain(), task, {"method": "ddpm", "model": model, "schedule": schedule,
                                                  "parameterization": "eps"}


def setup(name: str):
    if name == "teacher_ddpm":
        return ddpm_teacher_setup
    if name == "classifier_cg":
        from trilemma.training.tasks.guided import classifier_setup
        return classifier_setup
    from trilemma.training.tasks.pd_teacher import cfg_teacher_setup, pd_teacher_setup
    return pd_teacher_setup if name == "teacher_pd" else cfg_teacher_setup


def run(args):
    cfg = config.load_typed(args.profile)
    mod = modality.of(cfg)
    if paths.parse_gan_model(args.model):
        from trilemma.stages.train_gan import run_gan
        return run_gan(args, cfg, mod)
    launch(cfg.resource("train").gpu, sys.argv[1:])
    tensors, meta = load_tensors(args.data)
    torch.manual_seed(cfg.seed)
    train, section, task, model_json = setup(args.model)(cfg, tensors, meta)
    for net in task.modules.values():
        mod.place(net)
    task = mod.batches(task, train.hflip)
    run_training(cfg.profile, args.model, task, LoopConfig.from_config(train), seed=cfg.seed,
                 what={"model": args.model, "seed": cfg.seed, "section": section, "data": meta}, out=args.out,
                 progress=not args.no_progress,
                 describe=lambda final: {"name": args.model, **model_json, "data_dim": meta["data_dim"],
                                         "dataset": meta["dataset"], "train": train.plain(), "seed": cfg.seed,
                                         "weights": "ema"})
