"""Image profiles: stage one of guided distillation (Meng et al. 2023, Sec. 4.1, Algorithm 1) on the
U-Net, with the toy's task and loop (:class:`~trilemma.training.tasks.guided.GuidedStudentTask`
around :class:`~trilemma.sampling.guidance.CFGDenoiser`, ``guidance.stage1``): load the CFG teacher
``teacher_cfg`` from ``--teacher-dir``, build the student as its U-Net with ``w_cond`` (the w
embedding's last layer starts at zero, ``models/unet.py``, so the student equals the teacher's
conditional model at initialisation), every teacher weight copied, and train it to match the guided
teacher for w ~ U[w_min, w_max].  The uint8 batches are scaled (and flipped with
``guidance.stage1.train.hflip``) by :class:`~trilemma.training.tasks.images.ImageBatches`; the networks
run on the GPU when there is one.  Dropout is off in the student, as in the progressive-distillation
rounds that follow (our choice; the paper does not say).  Publishes ``guided_w``, the teacher of the
stage-two rounds (``trilemma distill-images --chain guidance``).  Under ``torchrun`` as ``guided-stage1``
(``resources.guided_stage1.gpu`` > 1)."""
from __future__ import annotations

import sys

import torch

from trilemma import config, dag
from trilemma.artifacts import load_model, load_tensors
from trilemma.diffusion.denoiser import OUTPUTS, Denoiser
from trilemma.models.registry import build_model
from trilemma.stages.guided_stage1 import add_arguments, guided_teacher, train_stage_one  # noqa: F401
from trilemma.training.distributed import launch
from trilemma.training.tasks.guided import GuidedStudentTask
from trilemma.training.tasks.images import ImageBatches, on_device, training_device, without_dropout


def w_unet_student(teacher: Denoiser, info: dict) -> tuple[Denoiser, dict]:
    """The teacher's U-Net with ``w_cond`` added; every teacher weight copied, only ``w_emb`` new."""
    model = {**info["model"], "unet": {**info["model"]["unet"], "w_cond": True}}
    net = build_model(model, info["data_dim"], info["data_dim"] * OUTPUTS[info["parameterization"]])
    missing, unexpected = net.load_state_dict(teacher.net.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("w_emb.") for k in missing), (missing, unexpected)
    return Denoiser(without_dropout(net).train(), teacher.schedule, teacher.parameterization), model


def run(args):
    cfg = config.load(args.profile)
    s1 = cfg["guidance"]["stage1"]
    launch(dag.resources(cfg, "guided_stage1")["gpu"], sys.argv[1:])
    tensors, meta = load_tensors(args.data)
    if not meta.get("image"):
        raise config.ConfigError(f"{args.data}: guided-stage1-images trains on image datasets; use `trilemma guided-stage1`")
    teacher, info = load_model(args.teacher_dir)
    if info.get("method") != "cfg_teacher":
        raise config.ConfigError(f"{args.teacher_dir}: stage one needs the CFG teacher, not {info.get('name')!r}")
    device = training_device()
    torch.manual_seed(cfg["seed"])
    student, model = w_unet_student(teacher, info)
    on_device(teacher.net, device)
    on_device(student.net, device)
    task = ImageBatches(GuidedStudentTask(student, guided_teacher(teacher, info), tensors["train"],
                                          tensors["train_labels"], s1["train"], (s1["w_min"], s1["w_max"]),
                                          cfg["distill"]["teacher"]["weighting"]), s1["train"].get("hflip", False))
    train_stage_one(args, cfg, task, info, meta, model)
