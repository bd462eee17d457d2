"""Image profiles: one round of progressive distillation (Salimans & Ho 2022, Algorithm 2) on the
U-Net, the toy's task and loop settings (``distill``'s rounds: no EMA, LR annealed linearly to 0,
``distill.rounds`` of the config) with the image batches of
:class:`~trilemma.training.tasks.images.ImageBatches` and dropout off in the student (reference
``cifar_distill.py``: dropout 0).  Loads the 2N-step model from ``--teacher-dir`` and publishes the
N-step student ``pd_s<N>`` beside it; resume as ``distill``.  ``--chain guidance`` runs stage two of
guided distillation (Meng et al. 2023, Algorithm 2) as ``distill --chain guidance`` does: the same task
on the w-conditioned U-Net, each example with its label and w ~ U[guidance.stage1.w_min, w_max]
(``guidance.rounds``, ``guidance.half_grid``); the students are ``guided_s<N>``.  Under ``torchrun`` as
``distill`` (``resources.distill.gpu`` > 1)."""
from __future__ import annotations

import copy
import sys

from trilemma import config, dag
from trilemma.artifacts import load_model, load_tensors
from trilemma.diffusion.denoiser import Denoiser
from trilemma.stages.distill import add_arguments, check_round, round_settings, train_round  # noqa: F401
from trilemma.training.distributed import launch
from trilemma.training.tasks.distill import DistillTask
from trilemma.training.tasks.images import ImageBatches, on_device, training_device, without_dropout


def run(args):
    cfg = config.load(args.profile)
    rounds = check_round(cfg, args)
    launch(dag.resources(cfg, "distill")["gpu"], sys.argv[1:])
    tensors, meta = load_tensors(args.data)
    teacher, info = load_model(args.teacher_dir)
    device = training_device()
    net = without_dropout(copy.deepcopy(teacher.net).requires_grad_(True).train())
    on_device(teacher.net, device)
    student = Denoiser(on_device(net, device), teacher.schedule, teacher.parameterization)
    weighting, guided, lr = round_settings(cfg, args, tensors)
    r = cfg[args.chain]["rounds"]
    task = ImageBatches(DistillTask(student, teacher, tensors["train"], {**r, "lr": lr}, args.steps, weighting,
                                    **guided), r.get("hflip", False))
    train_round(args, cfg, task, info, meta, rounds=rounds, lr=lr, weighting=weighting, guided=guided,
                fingerprint_extra={"hflip": task.hflip})
