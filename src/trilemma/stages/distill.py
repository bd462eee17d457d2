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


def round_loop_config(cfg: dict, steps: int, chain: str = "distill") -> LoopConfig:
    r = cfg[chain]["rounds"]
    updates = config.section(cfg, dag.round_key(cfg, "updates", steps, chain))
    return LoopConfig(samples=updates * r["batch_size"], batch_size=r["batch_size"], warmup_samples=0,
                      lr_schedule="linear", min_lr_ratio=0.0, ema_decay=0.0, grad_clip=r["grad_clip"],
                      checkpoint_every=r["checkpoint_every"], log_every=r["log_every"])


def run(args):
    cfg = config.load(args.profile)
    rounds = check_round(cfg, args)
    launch(dag.resources(cfg, "distill")["gpu"], sys.argv[1:])
    mod = modality.of(cfg)
    tensors, meta = load_tensors(args.data)
    teacher, info = load_model(args.teacher_dir)
    net = mod.place(copy.deepcopy(teacher.net).requires_grad_(True).train(), student=True)
    mod.place(teacher.net)
    student = Denoiser(net, teacher.schedule, teacher.parameterization)
    weighting, guided, lr = round_settings(cfg, args, tensors)
    r = cfg[args.chain]["rounds"]
    task = mod.batches(DistillTask(student, teacher, tensors["train"], {**r, "lr": lr}, args.steps, weighting,
                                   **guided), r.get("hflip", False))
    train_round(args, cfg, task, info, meta, rounds=rounds, lr=lr, weighting=weighting, guided=guided)


def check_round(cfg: dict, args) -> list[int]:
    """The chain's student step counts; ``--steps`` must be one of them."""
    rounds = dag.student_steps(cfg, args.chain)
    if args.steps not in rounds:
        raise config.ConfigError(f"--steps {args.steps} is not a student of the {args.chain} chain {rounds}")
    return rounds


def round_settings(cfg: dict, args, tensors: dict) -> tuple[str, dict, float]:
    """(loss weighting, what a guided round adds to the task, peak LR) of round ``args.steps``."""
    guided = {}
    if args.chain == "guidance":
        s1 = cfg["guidance"]["stage1"]
        guided = {"labels": tensors["train_labels"], "w_range": (s1["w_min"], s1["w_max"]),
                  "half_grid": cfg["guidance"]["half_grid"], "w_ends": s1["w_ends"],
                  "last_step": cfg["guidance"]["rounds"]["last_step"]}
    lr = config.section(cfg, dag.round_key(cfg, "lr", args.steps, args.chain))
    return cfg["distill"]["teacher"]["weighting"], guided, lr


def train_round(args, cfg: dict, task, info: dict, meta: dict, *, rounds: list[int], lr: float, weighting: str,
                guided: dict) -> None:
    """Run the round with the shared loop (resumable: the fingerprint includes the teacher's weights)
    and publish the student ``pd_s<N>`` / ``guided_s<N>`` with its model.json, the round's distillation
    bill in it (``training/bill.py``: this round's and, cumulatively, the chain's so far)."""
    loop_cfg = round_loop_config(cfg, args.steps, args.chain)
    name = dag.student(args.steps, args.chain)
    what = {"model": name, "seed": cfg["seed"], "loop": loop_cfg.__dict__, "lr": lr, "weighting": weighting,
            "teacher": file_digest(f"{args.teacher_dir}/model.safetensors"), "data": meta,
            "hflip": cfg[args.chain]["rounds"].get("hflip", False), **guided_fingerprint(guided)}
    run_training(cfg, name, task, loop_cfg, seed=cfg["seed"], what=what, out=args.out, progress=not args.no_progress,
                 desc=f"distill {name}", describe=lambda final: {
                     **{k: info[k] for k in ("model", "schedule", "parameterization", "data_dim", "dataset")},
                     "name": name, "method": "guided_pd" if guided else "pd", "steps": args.steps,
                     "round": rounds.index(args.steps) + 1, "teacher": info["name"], "weighting": weighting,
                     "train": cfg[args.chain]["rounds"], **guided_fingerprint(guided),
                     "updates": loop_cfg.total_steps, "lr": lr, "seed": cfg["seed"], "weights": "raw (no EMA)",
                     "bill": with_cumulative(task.bill, info)})


def guided_fingerprint(guided: dict) -> dict:
    """What a guided round adds to its fingerprint and model.json (nothing for progressive distillation)."""
    return {k: v for k, v in guided.items() if k != "labels"}
