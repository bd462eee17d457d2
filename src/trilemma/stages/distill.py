"""One round of progressive distillation (Salimans & Ho 2022, Algorithm 2): load the N*2-step model
from ``--teacher-dir``, initialise the N-step student as its copy, train it with the shared loop
(no EMA, LR annealed linearly to 0, ``distill.rounds`` of the config) and publish it beside the
other models.  Resume state lives in results/<profile>/.resume/pd_s<N>/; a killed round continues
from its last checkpoint when re-run (the fingerprint includes the teacher's weights)."""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

from trilemma import config, dag, paths
from trilemma.artifacts import load_model, load_tensors
from trilemma.diffusion.denoiser import Denoiser
from trilemma.stages.train import publish
from trilemma.training.loop import LoopConfig, train
from trilemma.training.tasks.distill import DistillTask


def add_arguments(p):
    p.add_argument("--teacher-dir", required=True, help="the previous model's directory (2N steps)")
    p.add_argument("--steps", required=True, type=int, help="N, the student's number of steps")
    p.add_argument("--data", required=True, help="dataset .safetensors from fetch-data")
    p.add_argument("--out", required=True, help="output model.safetensors (model.json is written beside it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def round_loop_config(cfg: dict, steps: int) -> LoopConfig:
    r = cfg["distill"]["rounds"]
    updates = config.section(cfg, dag.round_key(cfg, "updates", steps))
    return LoopConfig(samples=updates * r["batch_size"], batch_size=r["batch_size"], warmup_samples=0,
                      lr_schedule="linear", min_lr_ratio=0.0, ema_decay=0.0, grad_clip=r["grad_clip"],
                      checkpoint_every=r["checkpoint_every"], log_every=r["log_every"])


def run(args):
    cfg = config.load(args.profile)
    if args.steps not in dag.student_steps(cfg):
        raise config.ConfigError(f"--steps {args.steps} is not a student of the chain {dag.student_steps(cfg)}")
    tensors, meta = load_tensors(args.data)
    teacher, info = load_model(args.teacher_dir)
    net = copy.deepcopy(teacher.net).requires_grad_(True).train()
    student = Denoiser(net, teacher.schedule, teacher.parameterization)
    weighting = cfg["distill"]["teacher"]["weighting"]
    lr = config.section(cfg, dag.round_key(cfg, "lr", args.steps))
    task = DistillTask(student, teacher, tensors["train"], {**cfg["distill"]["rounds"], "lr": lr}, args.steps,
                       weighting)
    loop_cfg = round_loop_config(cfg, args.steps)
    teacher_hash = hashlib.sha256(Path(args.teacher_dir, "model.safetensors").read_bytes()).hexdigest()
    name = dag.student(args.steps)
    fingerprint = hashlib.sha256(json.dumps(
        {"model": name, "seed": cfg["seed"], "loop": loop_cfg.__dict__, "lr": lr, "weighting": weighting,
         "teacher": teacher_hash, "data": meta}, sort_keys=True).encode()).hexdigest()
    resume = paths.resume_dir(cfg["profile"], name)
    final = train(task, loop_cfg, seed=cfg["seed"], resume_dir=resume, fingerprint=fingerprint,
                  progress=not args.no_progress, desc=f"distill {name}")
    rounds = dag.student_steps(cfg)
    model_json = {**{k: info[k] for k in ("model", "schedule", "parameterization", "data_dim", "dataset")},
                  "name": name, "method": "pd", "steps": args.steps, "round": rounds.index(args.steps) + 1,
                  "teacher": info["name"], "weighting": weighting, "train": cfg["distill"]["rounds"],
                  "updates": loop_cfg.total_steps, "lr": lr, "seed": cfg["seed"], "weights": "raw (no EMA)"}
    publish(args.out, final["net"], model_json, resume)
