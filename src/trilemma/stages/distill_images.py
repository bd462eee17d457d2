"""Image profiles: one round of progressive distillation (Salimans & Ho 2022, Algorithm 2) on the
U-Net, the toy's task and loop settings (``distill``'s rounds: no EMA, LR annealed linearly to 0,
``distill.rounds`` of the config) with the image batches of
:class:`~trilemma.training.tasks.images.ImageBatches` and dropout off in the student (reference
``cifar_distill.py``: dropout 0).  Loads the 2N-step model from ``--teacher-dir`` and publishes the
N-step student ``pd_s<N>`` beside it; resume as ``distill``.  ``--chain guidance`` runs stage two of
guided distillation (Meng et al. 2023, Algorithm 2) as ``distill --chain guidance`` does: the same task
on the w-conditioned U-Net, each example with its label and w ~ U[guidance.stage1.w_min, w_max]
(``guidance.rounds``, ``guidance.half_grid``); the students are ``guided_s<N>``."""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

from trilemma import config, dag, paths
from trilemma.artifacts import load_model, load_tensors
from trilemma.diffusion.denoiser import Denoiser
from trilemma.stages.distill import add_arguments, guided_fingerprint, round_loop_config  # noqa: F401
from trilemma.stages.train import publish
from trilemma.training.loop import train
from trilemma.training.tasks.distill import DistillTask
from trilemma.training.tasks.images import ImageBatches, on_device, training_device, without_dropout


def run(args):
    cfg = config.load(args.profile)
    chain = args.chain
    rounds, r = dag.student_steps(cfg, chain), cfg[chain]["rounds"]
    if args.steps not in rounds:
        raise config.ConfigError(f"--steps {args.steps} is not a student of the {chain} chain {rounds}")
    tensors, meta = load_tensors(args.data)
    teacher, info = load_model(args.teacher_dir)
    device = training_device()
    net = without_dropout(copy.deepcopy(teacher.net).requires_grad_(True).train())
    on_device(teacher.net, device)
    student = Denoiser(on_device(net, device), teacher.schedule, teacher.parameterization)
    weighting = cfg["distill"]["teacher"]["weighting"]
    guided = {}
    if chain == "guidance":
        s1 = cfg["guidance"]["stage1"]
        guided = {"labels": tensors["train_labels"], "w_range": (s1["w_min"], s1["w_max"]),
                  "half_grid": cfg["guidance"]["half_grid"]}
    lr = config.section(cfg, dag.round_key(cfg, "lr", args.steps, chain))
    task = ImageBatches(DistillTask(student, teacher, tensors["train"], {**r, "lr": lr}, args.steps, weighting,
                                    **guided), r.get("hflip", False))
    loop_cfg = round_loop_config(cfg, args.steps, chain)
    name = dag.student(args.steps, chain)
    fingerprint = hashlib.sha256(json.dumps(
        {"model": name, "seed": cfg["seed"], "loop": loop_cfg.__dict__, "lr": lr, "weighting": weighting,
         "hflip": task.hflip, "data": meta, **guided_fingerprint(guided),
         "teacher": hashlib.sha256(Path(args.teacher_dir, "model.safetensors").read_bytes()).hexdigest()},
        sort_keys=True).encode()).hexdigest()
    resume = paths.resume_dir(cfg["profile"], name)
    final = train(task, loop_cfg, seed=cfg["seed"], resume_dir=resume, fingerprint=fingerprint,
                  progress=not args.no_progress, desc=f"distill {name}")
    model_json = {**{k: info[k] for k in ("model", "schedule", "parameterization", "data_dim", "dataset")},
                  "name": name, "method": "guided_pd" if guided else "pd", "steps": args.steps,
                  "round": rounds.index(args.steps) + 1, "teacher": info["name"], "weighting": weighting,
                  "train": r, **guided_fingerprint(guided), "updates": loop_cfg.total_steps,
                  "lr": lr, "seed": cfg["seed"], "weights": "raw (no EMA)"}
    publish(args.out, final["net"], model_json, resume)
