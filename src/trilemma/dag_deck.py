"""The issue-19 branch of the DAG, part of the one table in :mod:`trilemma.dag`: one ``deck`` job per
study (``trilemma deck-study --study <name>``; ``stages/deck_study.py``), each writing a committed table
``tables/deck_<study>.md`` and figure ``figures/deck_<study>.png`` that the report embeds.

Each job reads only its own ``deck.<study>`` keys (plus the seed and the figure dpi), so changing, say,
the inversion's step list re-runs that job and the report, nothing else.  Its inputs are the data, the
models it reads and its code.  On every profile with ``deck.enabled``, points and images alike (DDIM's
map studies run on any teacher); the denoising study needs a dataset with a closed-form density
(``data/catalog.py``'s ``CLOSED_FORM``: gauss25, ring8).
"""
from __future__ import annotations

from typing import Any, Mapping

from trilemma import dag_base as base, paths
from trilemma.data.catalog import CLOSED_FORM

STUDIES = ("inversion", "consistency", "interpolation", "denoising")
_COMMON = base._m("stages/deck_study", "reporting/deck", "dag_deck", "diffusion/oracle")
# DDIM as a map (inversion, consistency, interpolation): the teacher's and students' networks, the sampler
_DDIM_MAP = base._MODELS + base._m("deck/ddim_map", "sampling/ddim", "sampling/ddim_inversion", "sampling/interpolation",
                                   "diffusion/continuous")
# the entry modules of each study (``dag_base.code``); image profiles: the held-out split's scaling,
# the U-Net and the mosaics (``reporting/images.tile``)
base.ENTRIES.update({
    **{f"deck:{s}": _COMMON + _DDIM_MAP for s in ("inversion", "consistency", "interpolation")},
    "deck:denoising": _COMMON + base._MODELS + base._m("deck/denoising", "sampling/ddgan", "models/gan",
                                                        "evaluation/features2d", "evaluation/fidelity"),
    **{f"deck:{s}:images": base._m("data/images", "models/unet", "reporting/images") for s in STUDIES},
})


def deck_on(cfg: Mapping[str, Any]) -> bool:
    return cfg["deck"]["enabled"]


def studies(cfg: Mapping[str, Any]) -> list[str]:
    if not deck_on(cfg):
        return []
    return [s for s in STUDIES if s != "denoising" or (cfg["data"]["name"] in CLOSED_FORM and "denoising" in cfg["deck"])]


def inversion_students(cfg: Mapping[str, Any]) -> list[int]:
    """The students of ``deck.inversion.students`` that the chain trains (pd_s<N>)."""
    chain = set(base.student_steps(cfg))
    return [n for n in cfg["deck"]["inversion"]["students"] if n in chain]


def denoising_generators(cfg: Mapping[str, Any]) -> dict[int, list[str]]:
    """{T: the DDGANs of the ablation with T steps, one per training seed (``ddgan.ablation_seeds``)} for T of
    ``deck.denoising.steps``."""
    d = cfg["ddgan"]
    seeds = d["seeds"][:d["ablation_seeds"]]
    return {T: [paths.gan_model("ddgan", seed, T) for seed in seeds]
            for T in cfg["deck"]["denoising"]["steps"] if T in d["steps"]}


def models(cfg: Mapping[str, Any], study: str) -> list[str]:
    if study == "denoising":   # the generators, and the DDPM teacher whose Gaussian step is compared
        return [base.TEACHER, *(m for ms in denoising_generators(cfg).values() for m in ms)]
    if study == "inversion" and inversion_students(cfg):
        return [base.TEACHER, base.PD_TEACHER, *(base.student(n) for n in inversion_students(cfg))]
    return [base.TEACHER]


# Keys a study reads besides its own section.  Which students and generators it loads (distill.start_steps /
# final_steps, ddgan.steps / seeds) is in its inputs, the model files, so adding a DDGAN T the study does not
# use re-runs nothing here.
PARAMS = {"denoising": ("evaluation.features", "ddgan.schedule", "ddgan.ablation_seeds")}


def outputs(cfg: Mapping[str, Any], study: str) -> tuple[str, str]:
    p = cfg["profile"]
    return paths.fmt(paths.TABLE, profile=p, table=f"deck_{study}"), paths.fmt(paths.FIGURE, profile=p, figure=f"deck_{study}")


def deck_jobs(cfg: Mapping[str, Any], data: str) -> list[base.Job]:
    """One job per study; its committed table and figure are inputs of the report."""
    out = []
    for study in studies(cfg):
        table, figure = outputs(cfg, study)
        model_files = [f for m in models(cfg, study) for f in base.model_files(cfg, m)[:2]]
        out.append(base.Job(
            "deck", f"deck-{study}",
            ("trilemma", "deck-study", "--profile", cfg["profile"], "--study", study, "--data", data,
             "--models", paths.fmt(paths.ROOT + "/models", profile=cfg["profile"]), "--table", table, "--figure", figure),
            (data, *model_files, *base.code(cfg, f"deck:{study}")), (),
            ("seed", "timing.threads", "report.dpi", f"deck.{study}", *PARAMS.get(study, ())),
            committed=(table, figure)))
    return out


def report_section(cfg: Mapping[str, Any], read, link) -> list[str]:
    """The report's section: each study's table under its heading, its figure below (``read(path)``: the
    table's text; ``link(path)``: the figure's path relative to report.md)."""
    titles = {"inversion": "DDIM inversion (DDIM Table 2 layout)",
              "consistency": "DDIM consistency: one x_T, any number of steps (DDIM Fig. 5)",
              "interpolation": "Interpolating x_T: slerp vs linear (DDIM Fig. 6)",
              "denoising": "DDGAN's true denoising distribution, exact on the toy (DDGAN Sec. 3, Fig. 2)"}
    lines = []
    for study in studies(cfg):
        table, figure = outputs(cfg, study)
        lines += [f"## {titles[study]}", "", read(table).rstrip(), "", f"![{study}]({link(figure)})", ""]
    return lines
