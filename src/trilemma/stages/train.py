"""Train a model with the shared loop and publish its EMA weights (safetensors) and model.json.

Resume state lives in results/<profile>/.resume/<model>/; a killed run continues from its last
checkpoint when re-run with the same configuration.  Models: ``teacher_ddpm``; the Denoising
Diffusion GAN ``ddgan_t<T>_seed<S>`` and the GAN baselines ``gan_seed<S>``, ``wgan_gp_seed<S>``
(see ``trilemma.stages.train_gan``)."""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import torch

from trilemma import config, paths
from trilemma.artifacts import load_tensors, save_model
from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.models.registry import build_model
from trilemma.training.loop import LoopConfig, finish, train
from trilemma.training.tasks.ddpm import DDPMTask

MODELS = ("teacher_ddpm",)


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


def run(args):
    cfg = config.load(args.profile)
    if paths.parse_gan_model(args.model):
        from trilemma.stages.train_gan import run_gan
        return run_gan(args, cfg)
    tensors, meta = load_tensors(args.data)
    section = cfg["teacher"]
    torch.manual_seed(cfg["seed"])
    net = build_model(section["model"], meta["data_dim"])
    schedule = DiscreteSchedule.from_config(section["schedule"])
    task = DDPMTask(net, schedule, tensors["train"], section["train"])
    loop_cfg = LoopConfig.from_config(section["train"])
    fingerprint = hashlib.sha256(json.dumps(
        {"model": args.model, "seed": cfg["seed"], "section": section, "data": meta},
        sort_keys=True).encode()).hexdigest()
    resume = paths.resume_dir(cfg["profile"], args.model)
    final = train(task, loop_cfg, seed=cfg["seed"], resume_dir=resume, fingerprint=fingerprint,
                  progress=not args.no_progress, desc=f"train {args.model}")
    model_json = {"name": args.model, "method": "ddpm", "model": section["model"],
                  "schedule": section["schedule"], "parameterization": "eps",
                  "data_dim": meta["data_dim"], "dataset": meta["dataset"], "train": section["train"],
                  "seed": cfg["seed"], "weights": "ema"}
    save_model(args.out, final["net"], model_json)
    log_text = finish(resume)
    Path(args.out).with_name("train_log.jsonl").write_text(log_text)
    print(f"wrote {args.out}")
