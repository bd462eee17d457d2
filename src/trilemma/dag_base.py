"""The pieces every branch of the DAG builds on (:mod:`trilemma.dag` assembles the table from them and
from its branches :mod:`trilemma.dag_guidance`, :mod:`trilemma.dag_oracle`, :mod:`trilemma.dag_deck`):
the :class:`Job` record, each stage's code dependencies, the model names, the sample-bank id helpers
and the distillation chains' rounds.  ``trilemma.dag`` re-exports every name here, so callers keep
writing ``dag.Job``, ``dag.code``, ``dag.round_jobs``.

Torch-free, as is everything it imports: ``snakemake -n`` and ``trilemma check-config`` build the
whole DAG without torch (tests/test_imports.py).
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any, Mapping

from trilemma import paths
from trilemma.codedeps import PKG, closure
from trilemma.data.catalog import is_image_profile
from trilemma.keys import round_entry, section
from trilemma.sampling import registry


# Code each job depends on: the import closure (``codedeps.closure``: imports within src/trilemma,
# read with ast) of its entry modules.  An entry list names the stage's module and the branches its
# job takes in the branching modules (which model it builds and loads, which sampler family, which
# modality); ``<stage>:images`` adds the image modality's branches on image profiles.
# Non-Python inputs are declared beside them (``FILES``).
def _m(*names: str) -> list[str]:
    return [PKG + n + ".py" for n in names]


_MODELS = _m("models/registry", "models/mlp", "diffusion/denoiser", "diffusion/schedules")   # a diffusion model
_IMAGE_NETS = _m("data/images", "models/unet", "training/tasks/images")   # the image modality (modality.Images)
_BILL = _m("evaluation/timing")   # the distillation bill names the device
ENTRIES = {
    "fetch_data": _m("stages/fetch_data", "data/toy2d"),
    "fetch_data:images": _m("data/cifar10", "data/fashion_mnist", "data/download"),
    "train": _MODELS + _m("stages/train", "training/tasks/ddpm", "diffusion/schedules"),
    "train:images": _IMAGE_NETS,
    "train_pd": _MODELS + _m("stages/train", "training/tasks/pd_teacher", "diffusion/continuous"),
    "train_pd:images": _IMAGE_NETS,
    "train_classifier": _m("training/tasks/guided"),
    "train_gan": _m("stages/train", "stages/train_gan"),
    "train_gan:images": _IMAGE_NETS + _m("models/ddgan_images"),
    "train_gan:ddgan": _m("sampling/ddgan"),   # pairs and posterior
    "distill": _MODELS + _BILL + _m("stages/distill", "diffusion/continuous"),
    "distill:images": _IMAGE_NETS,
    "consistency": _MODELS + _BILL + _m("stages/consistency", "diffusion/continuous"),   # issue 18
    "consistency:images": _IMAGE_NETS,
    "guided_stage1": _MODELS + _BILL + _m("stages/guided_stage1", "diffusion/continuous"),
    "guided_stage1:images": _IMAGE_NETS,
    "sample": _MODELS + _m("stages/sample", "sampling/builders"),
    "sample:images": _m("data/images", "models/unet"),
    "floor": _m("stages/floor"),
    "evaluate": _m("stages/evaluate", "evaluation/points", "evaluation/guided_target"),
    "evaluate:images": _m("evaluation/images", "training/distributed"),
    "feature_net": _m("stages/feature_net") + _IMAGE_NETS[::2],   # data/images, training/tasks/images
    "reference_stats": _m("stages/reference_stats"),
    "collect": _m("stages/collect"),
    "share_model": _m("stages/share_model"),   # a trained network under a second name (stages/share_model.py)
    "report": _m("stages/report", "reporting/report", "dag_deck"),   # dag_deck: the issue-19 section
    "report:images": _m("reporting/images", "models/unet"),
    "guidance_table": _m("stages/guidance_table", "reporting/images"),
    "oracle": _m("stages/oracle"),
    "model:oracle": _m("diffusion/oracle"),   # the exact denoiser (issue 24; dag_oracle.py)
    # every sampler family's modules (``sampler:<family>``): the registry's entries
    **{f"sampler:{family}": list(e.code) for family, e in registry.ENTRIES.items()},
    "sampler:ddgan:images": _m("models/ddgan_images"),
}
FILES = {"report": [PKG + "reporting/paper_numbers.csv"]}   # non-Python inputs
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


def in_pd_chain(model: str) -> bool:
    """The progressive-distillation chain's models: ``teacher_pd`` and its students ``pd_s<N>``."""
    return model == PD_TEACHER or (parse_student(model) or ("",))[0] == "distill"


def round_key(cfg: Mapping[str, Any], field: str, steps: int, chain: str = "distill") -> str:
    """The config key holding ``<chain>.rounds.<field>`` (updates | lr) of the round that makes the
    ``steps``-step student: its ``s<steps>`` entry if there is one, else ``default`` (a plain value
    is one key for every round)."""
    entry = round_entry(cfg[chain]["rounds"][field], steps)
    return f"{chain}.rounds.{field}" + (f".{entry}" if entry else "")


def round_updates_key(cfg: Mapping[str, Any], steps: int, chain: str = "distill") -> str:
    return round_key(cfg, "updates", steps, chain)


# ----------------------------------------------------------------------------- jobs
def code(cfg: Mapping[str, Any], *keys: str) -> list[str]:
    """The code of a job made of ``keys``' entries (``ENTRIES``) in this profile: their import closure
    (image profiles add the ``<key>:images`` entries), and ``FILES``."""
    image = is_image_profile(cfg)
    entries = [e for k in keys for e in ENTRIES.get(k, []) + (ENTRIES.get(f"{k}:images", []) if image else [])]
    return closure(entries) + [f for k in keys for f in FILES.get(k, [])]


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
            ("trilemma", "distill", "--profile", p, "--chain", chain, "--teacher-dir", model_dir(cfg, prev),
             "--steps", str(n), "--data", data, "--out", outs[0]),
            (*model_files(cfg, prev)[:2], data, *code(cfg, "distill")), outs,
            ("seed", "distill.teacher.weighting", round_key(cfg, "updates", n, chain), f"{chain}.rounds.batch_size",
             round_key(cfg, "lr", n, chain), f"{chain}.rounds.grad_clip", f"{chain}.rounds.checkpoint_every",
             f"{chain}.rounds.log_every", *GUIDED_ROUND_PARAMS[chain], *image_params)))
        prev = name
    return out
