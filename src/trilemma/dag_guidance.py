"""The guidance branch of the DAG (methods.md §6-7), part of the one table in :mod:`trilemma.dag`:
the CFG teacher, the guidance classifier, stage one (the w-conditioned student), the stage-two rounds
(``base.round_jobs`` with ``chain="guidance"``) and the guidance sample banks, whose evaluation reads
the CFG teacher's reference bank at the same w (``fd_to_teacher``).

Image profiles run the same branch without classifier guidance (no ``classifier_cg``, no ``cg`` banks):
the same verbs as the toy's (``train``, ``guided-stage1``, ``distill --chain guidance``); their banks are evaluated with the image metrics (FID/IS/KID/PRC in the profile's
feature space; no class consistency, no ``fd_to_teacher``: the image evaluation does not read a
reference bank), and ``tables/guidance.md`` is written by its own job (``guidance-table``)."""
from __future__ import annotations

from typing import Any, Mapping

from trilemma import dag_base as base, paths

GUIDED_FAMILIES = base.registry.GUIDED_FAMILIES


def guidance_on(cfg: Mapping[str, Any]) -> bool:
    """Guidance runs where ``guidance.enabled``: on the 2-D profiles the labels are the gauss25 grid
    rows, on images the dataset's classes."""
    return cfg["guidance"]["enabled"]


def classifier_guidance_on(cfg: Mapping[str, Any]) -> bool:
    """Classifier guidance (the noise-conditional classifier and its banks): 2-D profiles only."""
    return guidance_on(cfg) and base.is_2d(cfg)


def guided_train_jobs(cfg: Mapping[str, Any], data: str) -> list[base.Job]:
    """The CFG teacher, the guidance classifier, stage one (the w-conditioned student) and the
    stage-two rounds."""
    if not guidance_on(cfg):
        return []
    p = cfg["profile"]
    recipe = ("distill.teacher.schedule", "distill.teacher.parameterization", "distill.teacher.weighting")
    teacher = base.Job("train", f"train-{base.CFG_TEACHER}",
                       ("trilemma", "train", "--profile", p, "--model", base.CFG_TEACHER, "--data", data,
                        "--out", base.model_files(cfg, base.CFG_TEACHER)[0]),
                       (data, *base.code(cfg, "train_pd")), base.model_files(cfg, base.CFG_TEACHER),
                       ("seed", *recipe, "guidance.p_uncond", "guidance.teacher"))
    stage1 = base.Job("guided_stage1", f"guided_stage1-{base.GUIDED_STUDENT}",
                      ("trilemma", "guided-stage1", "--profile", p,
                       "--teacher-dir", base.model_dir(cfg, base.CFG_TEACHER),
                       "--data", data, "--out", base.model_files(cfg, base.GUIDED_STUDENT)[0]),
                      (*base.model_files(cfg, base.CFG_TEACHER)[:2], data, *base.code(cfg, "train_pd", "guided_stage1")),
                      base.model_files(cfg, base.GUIDED_STUDENT), ("seed", "distill.teacher.weighting", "guidance.stage1"))
    if not classifier_guidance_on(cfg):
        return [teacher, stage1] + base.round_jobs(cfg, data, "guidance", base.GUIDED_STUDENT)
    out = [teacher,
           base.Job("train", f"train-{base.CLASSIFIER}",
                    ("trilemma", "train", "--profile", p, "--model", base.CLASSIFIER, "--data", data,
                     "--out", base.model_files(cfg, base.CLASSIFIER)[0]),
                    (data, *base.code(cfg, "train_pd", "train_classifier")), base.model_files(cfg, base.CLASSIFIER),
                    ("seed", "distill.teacher.schedule", "guidance.classifier")),
           stage1]
    return out + base.round_jobs(cfg, data, "guidance", base.GUIDED_STUDENT)


def guided_bank_ids(cfg: Mapping[str, Any]) -> list[str]:
    """CFG teacher at the reference steps for every w and at the grid steps for the grid w; the
    headline student (deterministic) for every w and every student of the grid; the stochastic
    sampler with N NFE on the N/2-step student; classifier guidance at each scale, of the model
    ``guidance.eval.classifier_guides`` (the unconditional teacher_pd, or the CFG teacher's null label)."""
    if not guidance_on(cfg):
        return []
    g = cfg["guidance"]
    e, head = g["eval"], g["headline_steps"]
    spec = base.spec_id
    ids = [f"{base.CFG_TEACHER}/{spec('cfg', w=w, steps=e['reference_steps'])}" for w in e["w"]]
    ids += [f"{base.student(head, 'guidance')}/{spec('gpd', w=w, steps=head)}" for w in e["w"]]
    for w in e["grid_w"]:
        ids += [f"{base.CFG_TEACHER}/{spec('cfg', w=w, steps=n)}" for n in e["grid_steps"]]
        ids += [f"{base.student(n, 'guidance')}/{spec('gpd', w=w, steps=n)}" for n in e["grid_steps"]]
        ids += [f"{base.student(n // 2, 'guidance')}/{spec('gstoch', w=w, steps=n)}" for n in e["stochastic_steps"]]
    if classifier_guidance_on(cfg):
        ids += [f"{e['classifier_guides']}/{spec('cg', w=s, steps=e['classifier_steps'])}" for s in e["classifier_scales"]]
    return list(dict.fromkeys(ids))


def spec_w(spec: str) -> float:
    return base.registry.parse(spec).w


def guided_extras(cfg: Mapping[str, Any], spec: str):
    """(sample argv, sample deps, evaluate argv, evaluate deps) of a guidance bank: the classifier
    for classifier guidance; the CFG teacher's reference bank at the same w (fd_to_teacher)."""
    p, e = cfg["profile"], cfg["guidance"]["eval"]
    sample_argv, sample_deps = (), ()
    if base.sampler_family(spec) == "cg":
        sample_argv = ("--classifier-dir", base.model_dir(cfg, base.CLASSIFIER))
        sample_deps = base.model_files(cfg, base.CLASSIFIER)[:2]
    w = spec_w(spec)
    ref_spec = base.spec_id("cfg", w=w, steps=e["reference_steps"])
    if w not in e["w"] or spec == ref_spec or not base.is_2d(cfg):   # images: no fd_to_teacher
        return sample_argv, sample_deps, (), ()
    ref = paths.fmt(paths.BANK, profile=p, model=base.CFG_TEACHER, spec=ref_spec)
    return sample_argv, sample_deps, ("--reference-bank", ref), (ref,)


def table_outputs(cfg: Mapping[str, Any]) -> list[str]:
    """Image profiles with guidance: ``tables/guidance.md`` (the 2-D profiles' report writes theirs)."""
    if not guidance_on(cfg) or base.is_2d(cfg):
        return []
    return [paths.fmt(paths.TABLE, profile=cfg["profile"], table="guidance")]


def table_jobs(cfg: Mapping[str, Any], csv: str) -> list[base.Job]:
    """The image profiles' guidance table from metrics.csv: FID/IS/KID/PRC of the CFG teacher and the
    guided student per w and steps (``trilemma guidance-table``); the report links it."""
    return [base.Job("guidance_table", "guidance_table",
                     ("trilemma", "guidance-table", "--profile", cfg["profile"], "--out", out),
                     (csv, *base.code(cfg, "guidance_table")), (), ("guidance",), committed=(out,))
            for out in table_outputs(cfg)]
