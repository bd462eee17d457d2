"""Stage one of guided distillation (Meng et al. 2023, Sec. 4.1, Algorithm 1): load the CFG teacher
from ``--teacher-dir``, build the w-conditioned student as a copy of it with a new, zero-initialised
w embedding (``models/mlp.py``; the U-Net's ``w_cond``, ``models/unet.py``: at initialisation it
equals the teacher's conditional model), train it with the shared loop to match the guided teacher
(:class:`~trilemma.sampling.guidance.CFGDenoiser`, 2 teacher passes per example) for
w ~ U[w_min, w_max] (``guidance.stage1``), and publish it as ``guided_w``, the teacher of the
stage-two rounds (``trilemma distill --chain guidance``).  One verb for 2-D and image profiles: on
images (:mod:`trilemma.modality`) the uint8 batches are scaled (and flipped with
``guidance.stage1.train.hflip``), the networks run on the GPU when there is one and the student's
dropout is off, as in the rounds that follow (our choice; the paper does not say).  With
``resources.guided_stage1.gpu`` > 1 it re-launches itself under ``torchrun``, as ``train`` does."""
from __future__ import annotations

import sys

import torch

from trilemma import config, dag, modality
from trilemma.artifacts import load_model, load_tensors
from trilemma.diffusion.denoiser import OUTPUTS, Denoiser
from trilemma.models.registry import build_model
from trilemma.sampling.guidance import CFGDenoiser
from trilemma.training.bill import with_cumulative
from trilemma.training.distributed import launch
from trilemma.training.loop import LoopConfig
from trilemma.training.runner import file_digest, run_training
from trilemma.training.tasks.guided import GuidedStudentTask


def add_arguments(p):
    p.add_argument("--teacher-dir", required=True, help="the CFG teacher's directory (teacher_cfg)")
    p.add_argument("--data", required=True, help="dataset .safetensors from fetch-data")
    p.add_argument("--out", required=True, help="output model.safetensors (model.json is written beside it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def w_model(model: dict, w_emb_dim: int) -> dict:
    """The teacher's model entry with a w input: the U-Net's ``w_cond``, the MLP's ``w_emb_dim``."""
    if "unet" in model:
        return {**model, "unet": {**model["unet"], "w_cond": True}}
    return {**model, "w_emb_dim": w_emb_dim}


def w_student(teacher: Denoiser, info: dict, w_emb_dim: int) -> tuple[Denoiser, dict]:
    """The teacher's network with a w embedding added; every teacher weight copied, only ``w_emb`` new."""
    model = w_model(info["model"], w_emb_dim)
    net = build_model(model, info["data_dim"], info["data_dim"] * OUTPUTS[info["parameterization"]])
    missing, unexpected = net.load_state_dict(teacher.net.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("w_emb.") for k in missing), (missing, unexpected)
    return Denoiser(net.train(), teacher.schedule, teacher.parameterization), model


def run(args):
    cfg = config.load_typed(args.profile)
    s1, weighting = cfg.guidance.stage1, cfg.distill.teacher.weighting
    launch(cfg.resource("guided_stage1").gpu, sys.argv[1:])
    mod = modality.of(cfg)
    tensors, meta = load_tensors(args.data)
    teacher, info = load_model(args.teacher_dir)
    if info.get("method") != "cfg_teacher":
        raise config.ConfigError(f"{args.teacher_dir}: stage one needs the CFG teacher, not {info.get('name')!r}")
    torch.manual_seed(cfg.seed)
    student, model = w_student(teacher, info, s1.w_emb_dim)   # 2-D profiles only (the U-Net: w_cond; None)
    mod.place(student.net, student=True)
    mod.place(teacher.net)
    task = mod.batches(GuidedStudentTask(student, guided_teacher(teacher, info), tensors["train"],
                                         tensors["train_labels"], s1, weighting), s1.train.hflip)
    name = dag.GUIDED_STUDENT
    run_training(cfg.profile, name, task, LoopConfig.from_config(s1.train), seed=cfg.seed, out=args.out,
                 what={"model": name, "seed": cfg.seed, "stage1": s1.plain(), "weighting": weighting,
                       "teacher": file_digest(f"{args.teacher_dir}/model.safetensors"), "data": meta},
                 progress=not args.no_progress, desc=f"guided stage one {name}", describe=lambda final: {
                     **{k: info[k] for k in ("schedule", "parameterization", "data_dim", "dataset")},
                     "model": model, "name": name, "method": "guided_w", "teacher": info["name"],
                     "weighting": weighting, "w_range": [s1.w_min, s1.w_max], "train": s1.train.plain(),
                     "seed": cfg.seed, "weights": "ema" if s1.train.ema_decay else "raw (no EMA)",
                     "bill": with_cumulative(task.bill, info)})


def guided_teacher(teacher: Denoiser, info: dict) -> CFGDenoiser:
    return CFGDenoiser(teacher, null_label=info["model"]["num_classes"])
