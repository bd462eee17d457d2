"""Consistency distillation (Song et al. 2023, Algorithm 2; :mod:`trilemma.training.tasks.consistency`)
of the distillation teacher ``teacher_pd`` (``--teacher-dir``), the teacher of progressive distillation,
into the consistency model ``cd``, with the one training loop and the ``consistency`` section of the
config.  One verb for every profile: on image profiles the batches are the uint8 images scaled (and
flipped, ``consistency.train.hflip``), the networks run on the GPU when there is one and the student's
dropout is off, as in the progressive-distillation rounds.  Resume state lives in
results/<profile>/.resume/cd/; a killed job continues from its last checkpoint when re-run (the
fingerprint includes the teacher's weights).  model.json carries the distillation bill
(``training/bill.py``).  With ``resources.distill.gpu`` > 1 it re-launches itself under ``torchrun``."""
from __future__ import annotations

import copy
import sys

import torch

from trilemma import config, dag, modality
from trilemma.artifacts import load_model, load_tensors
from trilemma.diffusion.denoiser import Denoiser
from trilemma.schema.models import Consistency
from trilemma.training.bill import with_cumulative
from trilemma.training.distributed import launch
from trilemma.training.loop import LoopConfig
from trilemma.training.runner import file_digest, run_training
from trilemma.training.tasks.consistency import ConsistencyDistillTask


def add_arguments(p):
    p.add_argument("--teacher-dir", required=True, help="the distillation teacher's directory (teacher_pd)")
    p.add_argument("--data", required=True, help="dataset .safetensors from fetch-data")
    p.add_argument("--out", required=True, help="output model.safetensors (model.json is written beside it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def loop_config(cd: Consistency) -> LoopConfig:
    """Adam at a constant LR (the paper's CD), ``updates`` steps of ``batch_size``, no warm-up."""
    tr = cd.train
    return LoopConfig(samples=tr.updates * tr.batch_size, batch_size=tr.batch_size, lr_schedule="constant",
                      ema_decay=tr.ema_decay, grad_clip=tr.grad_clip, checkpoint_every=tr.checkpoint_every,
                      log_every=tr.log_every)


def run(args):
    cfg = config.load_typed(args.profile)
    cd = cfg.consistency
    launch(cfg.resource("distill").gpu, sys.argv[1:])
    mod = modality.of(cfg)
    tensors, meta = load_tensors(args.data)
    teacher, info = load_model(args.teacher_dir)
    torch.manual_seed(cfg.seed)
    net = mod.place(copy.deepcopy(teacher.net).requires_grad_(True).train(), student=True)
    mod.place(teacher.net)
    task = mod.batches(ConsistencyDistillTask(Denoiser(net, teacher.schedule, teacher.parameterization), teacher,
                                              tensors["train"], cd), cd.train.hflip)
    loop_cfg, name = loop_config(cd), dag.CD_STUDENT
    run_training(cfg.profile, name, task, loop_cfg, seed=cfg.seed, out=args.out,
                 what={"model": name, "seed": cfg.seed, "consistency": cd.plain(),
                       "teacher": file_digest(f"{args.teacher_dir}/model.safetensors"), "data": meta},
                 progress=not args.no_progress, desc=f"consistency distillation {name}", describe=lambda final: {
                     **{k: info[k] for k in ("model", "schedule", "parameterization", "data_dim", "dataset")},
                     "name": name, "method": "cd", "teacher": info["name"], "t_min": cd.t_min,
                     "consistency": cd.plain(), "updates": loop_cfg.total_steps, "seed": cfg.seed,
                     "weights": "ema" if cd.train.ema_decay else "raw (no EMA)",
                     "bill": with_cumulative(task.bill, None)})
