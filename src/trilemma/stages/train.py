"""Train a model with the shared loop and publish its EMA weights (safetensors) and model.json.

Resume state lives in results/<profile>/.resume/<model>/; a killed run continues from its last
checkpoint when re-run with the same configuration.  Models: ``teacher_ddpm``; the Denoising
Diffusion GAN ``ddgan_t<T>_seed<S>`` and the GAN baselines ``gan_seed<S>``, ``wgan_gp_seed<S>``
(see ``trilemma.stages.train_gan``)."""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

from trilemma import config, dag, paths
from trilemma.artifacts import load_tensors, save_model
from trilemma.diffusion.schedules import DiscreteSchedule
from trilemma.models.registry import build_model
from trilemma.training.distributed import context, launch, shutdown
from trilemma.training.loop import LoopConfig, finish, train
from trilemma.training.tasks.ddpm import DDPMTask

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


def run(args):
    cfg = config.load(args.profile)
    if paths.parse_gan_model(args.model):
        from trilemma.stages.train_gan import run_gan
        return run_gan(args, cfg)
    launch(dag.resources(cfg, "train")["gpu"], sys.argv[1:])
    tensors, meta = load_tensors(args.data)
    torch.manual_seed(cfg["seed"])
    if args.model in ("teacher_pd", "teacher_cfg"):
        from trilemma.training.tasks.pd_teacher import cfg_teacher_setup, pd_teacher_setup
        setup = pd_teacher_setup if args.model == "teacher_pd" else cfg_teacher_setup
        section, task, model_json = setup(cfg, tensors, meta)
    elif args.model == "classifier_cg":
        from trilemma.training.tasks.guided import classifier_setup
        section, task, model_json = classifier_setup(cfg, tensors, meta)
    else:
        section = cfg["teacher"]
        net = build_model(section["model"], meta["data_dim"])
        if meta.get("image"):  # image profiles train on a GPU when there is one; the toy stays on the CPU
            net = net.to("cuda" if torch.cuda.is_available() else "cpu")
        schedule = DiscreteSchedule.from_config(section["schedule"])
        task = DDPMTask(net, schedule, tensors["train"], section["train"])
        model_json = {"method": "ddpm", "model": section["model"], "schedule": section["schedule"],
                      "parameterization": "eps"}
    loop_cfg = LoopConfig.from_config(section["train"])
    fingerprint = hashlib.sha256(json.dumps(
        {"model": args.model, "seed": cfg["seed"], "section": section, "data": meta},
        sort_keys=True).encode()).hexdigest()
    resume = paths.resume_dir(cfg["profile"], args.model)
    final = train(task, loop_cfg, seed=cfg["seed"], resume_dir=resume, fingerprint=fingerprint,
                  progress=not args.no_progress, desc=f"train {args.model}")
    model_json = {"name": args.model, **model_json,
                  "data_dim": meta["data_dim"], "dataset": meta["dataset"], "train": section["train"],
                  "seed": cfg["seed"], "weights": "ema"}
    publish(args.out, final["net"], model_json, resume)


def publish(out: str, weights: dict, model_json: dict, resume: Path) -> None:
    """Write the model and its training log, then clear the resume state (rank 0 only under torchrun)."""
    if not context().is_main:
        shutdown()
        return
    save_model(out, weights, model_json)
    log_text = finish(resume)
    Path(out).with_name("train_log.jsonl").write_text(log_text)
    print(f"wrote {out}")
    shutdown()
