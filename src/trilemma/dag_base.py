"""The pieces every branch of the DAG builds on (:mod:`trilemma.dag` assembles the table from them and
from its branches :mod:`trilemma.dag_guidance`, :mod:`trilemma.dag_oracle`, :mod:`trilemma.dag_deck`):
the :class:`Job` record, each stage's code dependencies, the model names, the sample-bank id helpers
and the distillation chains' rounds.  ``trilemma.dag`` re-exports every name here, so callers keep
writing ``dag.Job``, ``dag.CODE``, ``dag.round_jobs``.

Torch-free, as is everything it imports: ``snakemake -n`` and ``trilemma check-config`` build the
whole DAG without torch (tests/test_imports.py).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Mapping

from trilemma import paths
from trilemma.data.catalog import is_image_profile
from trilemma.keys import section
from trilemma.sampling import registry

PKG = "src/trilemma/"

# Code each stage depends on (paths relative to the repository root).
_DIFFUSION = [PKG + "diffusion/schedules.py", PKG + "diffusion/denoiser.py"]
_MODELS = [PKG + "models/mlp.py", PKG + "models/embedding.py", PKG + "models/registry.py"]
_ARTIFACTS = [PKG + "artifacts.py"]
CODE = {
    "fetch_data": [PKG + "data/toy2d.py", PKG + "stages/fetch_data.py"] + _ARTIFACTS,
    "train": _DIFFUSION + _MODELS + _ARTIFACTS + [
        PKG + "training/loop.py", PKG + "training/distributed.py", PKG + "training/tasks/ddpm.py", PKG + "stages/train.py"],
    "sample": _DIFFUSION + _MODELS + _ARTIFACTS + [
        PKG + "sampling/common.py", PKG + "evaluation/timing.py", PKG + "training/distributed.py", PKG + "stages/sample.py",
        PKG + "sampling/registry.py", PKG + "sampling/builders.py", PKG + "training/bill.py"],
    "evaluate": _ARTIFACTS + [PKG + "evaluation/fidelity.py", PKG + "evaluation/toy.py",
                              PKG + "evaluation/features2d.py", PKG + "evaluation/panel.py",
                              PKG + "evaluation/guided_target.py", PKG + "stages/evaluate.py"],
    "train_gan": _DIFFUSION + _ARTIFACTS + [
        PKG + "models/gan.py", PKG + "models/embedding.py", PKG + "training/loop.py",
        PKG + "training/tasks/gan.py", PKG + "stages/train.py", PKG + "stages/train_gan.py"],
    "train_gan:ddgan": [PKG + "sampling/ddgan.py", PKG + "sampling/common.py"],  # pairs and posterior
    "collect": [PKG + "stages/collect.py"],
    "share_model": [PKG + "stages/share_model.py"] + _ARTIFACTS,
    "floor": [PKG + "data/toy2d.py", PKG + "stages/floor.py"] + _ARTIFACTS,
    "train_pd": _DIFFUSION + _MODELS + _ARTIFACTS + [
        PKG + "diffusion/continuous.py", PKG + "training/loop.py", PKG + "training/distributed.py", PKG + "training/tasks/pd_teacher.py",
        PKG + "stages/train.py", PKG + "training/tasks/ddpm.py"],
    "distill": _DIFFUSION + _MODELS + _ARTIFACTS + [
        PKG + "diffusion/continuous.py", PKG + "training/loop.py", PKG + "training/distributed.py", PKG + "training/tasks/pd_teacher.py",
        PKG + "training/tasks/distill.py", PKG + "training/tasks/guided.py", PKG + "sampling/ddim.py", PKG + "sampling/common.py",
        PKG + "stages/distill.py", PKG + "stages/train.py", PKG + "training/tasks/ddpm.py", PKG + "training/bill.py",
        PKG + "evaluation/timing.py"],   # the bill names the device
    # consistency distillation (issue 18): the student of teacher_pd, one job for toy and image profiles
    "consistency": _DIFFUSION + _MODELS + _ARTIFACTS + [
        PKG + "diffusion/continuous.py", PKG + "diffusion/consistency.py", PKG + "training/loop.py",
        PKG + "training/distributed.py", PKG + "training/bill.py", PKG + "training/tasks/consistency.py",
        PKG + "training/tasks/guided.py", PKG + "training/tasks/pd_teacher.py", PKG + "sampling/ddim.py",
        PKG + "sampling/common.py", PKG + "stages/consistency.py", PKG + "stages/train.py", PKG + "evaluation/timing.py"],
    # guidance (methods.md §6-7): the CFG teacher is the PD teacher's task with labels
    "train_classifier": [PKG + "training/tasks/guided.py"],
    "guided_stage1": [PKG + "training/tasks/guided.py", PKG + "sampling/guidance.py", PKG + "stages/guided_stage1.py",
                      PKG + "training/bill.py", PKG + "evaluation/timing.py"],
    "model:oracle": [PKG + "diffusion/oracle.py"],   # the exact denoiser (issue 24; dag_oracle.py)
    "report": [PKG + "reporting/tables.py", PKG + "reporting/compare.py", PKG + "reporting/guidance.py", PKG + "reporting/distillation.py", PKG + "reporting/distillation_cost.py", PKG + "reporting/figures.py", PKG + "reporting/report.py",
               PKG + "reporting/paper_numbers.csv", PKG + "reporting/ddgan.py", PKG + "stages/report.py",
               PKG + "reporting/error_split.py", PKG + "dag_deck.py"],   # dag_deck: the issue-19 section
    # every sampler family's modules (``sampler:<family>``): the registry's entries
    **{f"sampler:{family}": list(e.code) for family, e in registry.ENTRIES.items()},
}
# Image profiles: extra code on top of the stage's own (the toy's dependencies stay as they are).
_IMAGES = [PKG + "data/images.py"]
_FEATURES = _IMAGES + _ARTIFACTS + [PKG + "evaluation/images.py", PKG + "models/classifier.py",
                                    PKG + "stages/feature_net.py"]
CODE_IMAGES = {
    "fetch_data": _IMAGES + [PKG + "data/cifar10.py", PKG + "data/fashion_mnist.py", PKG + "data/download.py"],
    "train": _IMAGES + [PKG + "models/unet.py"],
    "sample": _IMAGES + [PKG + "models/unet.py"],
    "feature_net": _IMAGES + _ARTIFACTS + [
        PKG + "models/classifier.py", PKG + "training/loop.py", PKG + "training/tasks/classifier.py",
        PKG + "stages/feature_net.py"],
    "reference_stats": _FEATURES + [PKG + "stages/reference_stats.py"],
    "evaluate": _FEATURES + [PKG + "training/distributed.py", PKG + "evaluation/classes.py"],
    "report": [PKG + "reporting/images.py"],
    # progressive distillation and DDGAN on images: the toy's tasks through image-only stages
    # (``trilemma train-images`` / ``distill-images``: uint8 batches scaled, networks on the GPU)
    "train_pd": _IMAGES + [PKG + "models/unet.py", PKG + "training/tasks/images.py", PKG + "stages/train_images.py"],
    "distill": _IMAGES + [PKG + "models/unet.py", PKG + "training/tasks/images.py", PKG + "stages/distill_images.py"],
    "consistency": _IMAGES + [PKG + "models/unet.py", PKG + "training/tasks/images.py"],
    "train_gan": _IMAGES + [PKG + "models/unet.py", PKG + "models/ddgan_images.py", PKG + "training/tasks/images.py",
                            PKG + "stages/train_images.py"],
    "sampler:ddgan": [PKG + "models/unet.py", PKG + "models/ddgan_images.py"],
    # guidance on images: the CFG teacher trains as train_pd does (``train-images``), stage one through
    # ``guided-stage1-images``, stage two as the distill rounds; the guidance table is its own job
    "guided_stage1": _IMAGES + [PKG + "models/unet.py", PKG + "training/tasks/images.py",
                                PKG + "stages/guided_stage1_images.py"],
    "guidance_table": [PKG + "reporting/guidance.py", PKG + "reporting/tables.py", PKG + "reporting/images.py",
                       PKG + "stages/guidance_table.py"],
}
# The verbs of the training jobs on image profiles (``trilemma.stages.train_images`` and
# ``distill_images``); the DDPM teacher trains with ``train`` on both kinds of profile.
IMAGE_VERBS = {"train": "train-images", "distill": "distill-images", "guided-stage1": "guided-stage1-images"}

TEACHER = "teacher_ddpm"
PD_TEACHER = "teacher_pd"
CFG_TEACHER = "teacher_cfg"
CLASSIFIER = "classifier_cg"
GUIDED_STUDENT = "guided_w"   # stage one: the w-conditioned student
CD_STUDENT = "cd"             # consistency distillation of PD_TEACHER (issue 18)


@dataclass(frozen=True)
class Job:
    stage: str                 # the Snakemake rule / DVC stage family
    name: str                  # unique id; the DVC stage name
    argv: tuple[str, ...]      # the command both tools run
    deps: tuple[str, ...]      # data inputs first, then code
    outs: tuple[str, ...]      # cached outputs (gitignored)
    params: tuple[str, ...]    # dotted config keys this job reads
    committed: tuple[str, ...] = field(default=())  # outputs kept in git (DVC cache: false)

    @property
    def shell(self) -> str:
        return shlex.join(self.argv)

    def param_values(self, cfg: Mapping[str, Any]) -> dict:
        return {key: section(cfg, key) for key in self.params}


# ----------------------------------------------------------------------------- sample bank ids
fmt_num = registry.fmt_num
spec_id = registry.spec_id
sampler_family = registry.family_of


def sample_specs(cfg: Mapping[str, Any]) -> list[str]:
    """Every sampler spec of the DDPM teacher's grid (the registry's ``sampling.<section>`` entries),
    as the id used in file names and wildcards."""
    return registry.teacher_specs(cfg["sampling"])


def is_2d(cfg: Mapping[str, Any]) -> bool:
    """The GAN baselines and classifier guidance run on the 2-D profiles only; image profiles run the
    DDPM teacher's samplers, progressive distillation, DDGAN, classifier-free guidance and guided
    distillation."""
    return not is_image_profile(cfg)


# ----------------------------------------------------------------------------- progressive distillation
CHAIN_PREFIX = {"distill": "pd", "guidance": "guided"}


def student_steps(cfg: Mapping[str, Any], chain: str = "distill") -> list[int]:
    """The students of the chain (``distill``: progressive distillation; ``guidance``: stage two of
    guided distillation), start/2 ... final (one round each)."""
    d = cfg[chain]
    out, n = [], d["start_steps"] // 2
    while n >= d["final_steps"]:
        out.append(n)
        n //= 2
    return out


def student(steps: int, chain: str = "distill") -> str:
    """The model id of a chain's N-step student (``pd_s<N>``, ``guided_s<N>``); :func:`parse_student` reads it."""
    return f"{CHAIN_PREFIX[chain]}_s{steps}"


_STUDENT = re.compile(r"^(" + "|".join(CHAIN_PREFIX.values()) + r")_s(\d+)$")


def parse_student(model: str) -> tuple[str, int] | None:
    """(chain, N) of a student's model id (``pd_s4`` -> (``distill``, 4)), else None."""
    m = _STUDENT.match(model)
    if not m:
        return None
    return next(c for c, prefix in CHAIN_PREFIX.items() if prefix == m[1]), int(m[2])


def round_key(cfg: Mapping[str, Any], field: str, steps: int, chain: str = "distill") -> str:
    """The config key holding ``<chain>.rounds.<field>`` (updates | lr) of the round that makes the
    ``steps``-step student: its ``s<steps>`` entry if there is one, else ``default`` (a plain value
    is one key for every round)."""
    value = cfg[chain]["rounds"][field]
    if not isinstance(value, Mapping):
        return f"{chain}.rounds.{field}"
    key = f"s{steps}"
    return f"{chain}.rounds.{field}.{key if key in value else 'default'}"


def round_updates_key(cfg: Mapping[str, Any], steps: int, chain: str = "distill") -> str:
    return round_key(cfg, "updates", steps, chain)


# ----------------------------------------------------------------------------- jobs
def code(cfg: Mapping[str, Any], stage: str) -> list[str]:
    """The code a stage's jobs depend on in this profile (image profiles add their modules)."""
    return CODE.get(stage, []) + (CODE_IMAGES.get(stage, []) if is_image_profile(cfg) else [])


def verb(cfg: Mapping[str, Any], name: str) -> str:
    """The ``trilemma`` verb of a training job: ``train`` / ``distill``, or their image variants."""
    return IMAGE_VERBS[name] if not is_2d(cfg) else name


def model_files(cfg: Mapping[str, Any], name: str) -> tuple[str, str, str]:
    """(weights, model.json, training log) of a model."""
    return tuple(paths.fmt(pat, profile=cfg["profile"], model=name)
                 for pat in (paths.MODEL, paths.MODEL_CONFIG, paths.TRAIN_LOG))


def model_dir(cfg: Mapping[str, Any], name: str) -> str:
    return paths.fmt(paths.ROOT + "/models/{model}", profile=cfg["profile"], model=name)


GUIDED_ROUND_PARAMS = {"distill": (), "guidance": ("guidance.stage1.w_min", "guidance.stage1.w_max", "guidance.stage1.w_ends",
                                                  "guidance.half_grid", "guidance.rounds.last_step")}


def round_jobs(cfg: Mapping[str, Any], data: str, chain: str, first_teacher: str) -> list[Job]:
    """One ``distill`` job per round of a chain (``distill`` or ``guidance``, stage two)."""
    p, out, prev = cfg["profile"], [], first_teacher
    image_params = () if is_2d(cfg) else (f"{chain}.rounds.hflip",)   # the image batches' flips
    for n in student_steps(cfg, chain):
        name = student(n, chain)
        outs = model_files(cfg, name)
        out.append(Job(
            "distill", f"distill-{name}",
            ("trilemma", verb(cfg, "distill"), "--profile", p, "--chain", chain, "--teacher-dir", model_dir(cfg, prev),
             "--steps", str(n), "--data", data, "--out", outs[0]),
            (*model_files(cfg, prev)[:2], data, *code(cfg, "distill")), outs,
            ("seed", "distill.teacher.weighting", round_key(cfg, "updates", n, chain), f"{chain}.rounds.batch_size",
             round_key(cfg, "lr", n, chain), f"{chain}.rounds.grad_clip", f"{chain}.rounds.checkpoint_every",
             f"{chain}.rounds.log_every", *GUIDED_ROUND_PARAMS[chain], *image_params)))
        prev = name
    return out
