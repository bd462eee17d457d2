"""One round of progressive distillation (Salimans & Ho 2022, Algorithm 2): load the N*2-step model
from ``--teacher-dir``, initialise the N-step student as its copy, train it with the shared loop
(no EMA, LR annealed linearly to 0, ``<chain>.rounds`` of the config) and publish it beside the
other models.  ``--chain guidance`` runs stage two of guided distillation (Meng et al. 2023,
Algorithm 2): the same task on the w-conditioned model, each example with its label and
w ~ U[guidance.stage1.w_min, w_max]; the students are ``guided_s<N>``.  One verb for 2-D and image
profiles: on images (:mod:`trilemma.modality`) the batches are the uint8 images scaled (and flipped
with ``<chain>.rounds.hflip``), the networks run on the GPU when there is one and the student's
dropout is off (reference ``cifar_distill.py``: dropout 0).  Resume state lives in
results/<profile>/.resume/pd_s<N>/; a killed round continues from its last checkpoint when re-run
(the fingerprint includes the teacher's weights).  With ``resources.distill.gpu`` > 1 the round
re-launches itself under ``torchrun``, as ``train`` does."""
from __future__ import annotations

import copy
import sys

from trilemma import config, dag, modality
from trilemma.artifacts import load_model, load_tensors
from trilemma.diffusion.denoiser import Denoiser
from trilemma.schema.models import Config, Distill, Guidance, GuidedRounds, Rounds
from trilemma.training.bill import with_cumulative
from trilemma.training.distributed import launch
from trilemma.training.loop import LoopConfig
from trilemma.training.runner import file_digest, run_training
from trilemma.training.tasks.distill import DistillTask


def add_arguments(p):
    p.add_argument("--chain", default="distill", choices=tuple(dag.CHAIN_PREFIX),
                   help="distill: progressive distillation (pd_s<N>); guidance: guided stage two (guided_s<N>)")
    p.add_argument("--teacher-dir", required=True, help="the previous model's directory (2N steps)")
    p.add_argument("--steps", required=True, type=int, help="N, the student's number of steps")
    p.add_argument("--data", required=True, help="dataset .safetensors from fetch-data")
    p.add_argument("--out", required=True, help="output model.safetensors (model.json is written beside it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def round_loop_config(rounds: Rounds | GuidedRounds, steps: int) -> LoopConfig:
    """Algorithm 2's loop for the round that makes the ``steps``-step student: its ``updates`` of
    ``batch_size``, no warm-up, the LR annealed linearly to 0, no EMA."""
    return LoopConfig(samples=rounds.round_value("updates", steps) * rounds.batch_size, batch_size=rounds.batch_size,
                      warmup_samples=0, lr_schedule="linear", min_lr_ratio=0.0, ema_decay=0.0,
                      grad_clip=rounds.grad_clip, checkpoint_every=rounds.checkpoint_every, log_every=rounds.log_every)


def run(args):
    cfg = config.load_typed(args.profile)
    chain = check_round(cfg, args)
    launch(cfg.resource("distill").gpu, sys.argv[1:])
    mod = modality.of(cfg)
    tensors, meta = load_tensors(args.data)
    teacher, info = load_model(args.teacher_dir)
    net = mod.place(copy.deepcopy(teacher.net).requires_grad_(True).train(), student=True)
    mod.place(teacher.net)
    student = Denoiser(net, teacher.schedule, teacher.parameterization)
    weighting, guided = cfg.distill.teacher.weighting, guided_settings(cfg, args, tensors)
    task = mod.batches(DistillTask(student, teacher, tensors["train"], chain.rounds, args.steps, weighting, **guided),
                       chain.rounds.hflip)
    train_round(args, cfg, task, info, meta, chain=chain, weighting=weighting, guided=guided)


def check_round(cfg: Config, args) -> Distill | Guidance:
    """The chain ``--chain`` names; ``--steps`` must be one of its students."""
    chain = getattr(cfg, args.chain)
    if args.steps not in chain.students():
        raise config.ConfigError(f"--steps {args.steps} is not a student of the {args.chain} chain {chain.students()}")
    return chain


def guided_settings(cfg: Config, args, tensors: dict) -> dict:
    """What a guided round (stage two, ``--chain guidance``) adds to the task: the labels, w's range and
    draw (``guidance.stage1``), the half grid and the last-step share; nothing for progressive distillation."""
    if args.chain != "guidance":
        return {}
    g = cfg.guidance
    return {"labels": tensors["train_labels"], "w_range": (g.stage1.w_min, g.stage1.w_max), "half_grid": g.half_grid,
            "w_ends": g.stage1.w_ends, "last_step": g.rounds.last_step}


def train_round(args, cfg: Config, task, info: dict, meta: dict, *, chain: Distill | Guidance, weighting: str,
                guided: dict) -> None:
    """Run the round with the shared loop (resumable: the fingerprint includes the teacher's weights)
    and publish the student ``pd_s<N>`` / ``guided_s<N>`` with its model.json, the round's distillation
    bill in it (``training/bill.py``: this round's and, cumulatively, the chain's so far)."""
    rounds = chain.rounds
    loop_cfg, lr = round_loop_config(rounds, args.steps), rounds.round_value("lr", args.steps)
    name = dag.student(args.steps, args.chain)
    what = {"model": name, "seed": cfg.seed, "loop": loop_cfg.__dict__, "lr": lr, "weighting": weighting,
            "teacher": file_digest(f"{args.teacher_dir}/model.safetensors"), "data": meta,
            "hflip": rounds.hflip, **guided_fingerprint(guided)}
    run_training(cfg.profile, name, task, loop_cfg, seed=cfg.seed, what=what, out=args.out,
                 progress=not args.no_progress, desc=f"distill {name}", describe=lambda final: {
                     **{k: info[k] for k in ("model", "schedule", "parameterization", "data_dim", "dataset")},
                     "name": name, "method": "guided_pd" if guided else "pd", "steps": args.steps,
                     "round": chain.students().index(args.steps) + 1, "teacher": info["name"],
                     "weighting": weighting, "train": rounds.plain(), **guided_fingerprint(guided),
                     "updates": loop_cfg.total_steps, "lr": lr, "seed": cfg.seed, "weights": "raw (no EMA)",
                     "bill": with_cumulative(task.bill, info)})


def guided_fingerprint(guided: dict) -> dict:
    """What a guided round adds to its fingerprint and model.json (nothing for progressive distillation)."""
    return {k: v for k, v in guided.items() if k != "labels"}
