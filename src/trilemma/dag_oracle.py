"""The oracle branch of the DAG (issue 24), part of the one table in :mod:`trilemma.dag`: the exact
denoiser of the toy's mixture registered as a model (``trilemma oracle``, a ``train``-stage job: it
writes a model directory as the teachers do) and its sample banks, ordinary ``sample`` and
``evaluate`` jobs, so they reach ``metrics.csv`` with model ``oracle``.

The banks are the DDPM teacher's specs (``base.sample_specs``) that start with one of
``oracle.samplers``: the same solvers at the same steps on the exact denoiser, so the report can split
each teacher bank's error into the solver's (the oracle's bank) and the network's (the difference;
``reporting/error_split.py``).  On by ``oracle.enabled``, for 2-D datasets with a closed-form density
(``data/catalog.py``'s ``CLOSED_FORM``: gauss25, ring8).
"""
from __future__ import annotations

from typing import Any, Mapping

from trilemma import dag_base as base
from trilemma.data.catalog import CLOSED_FORM

ORACLE = "oracle"
TABLES = ("error_split",)
FIGURES = ("error_split",)


def oracle_on(cfg: Mapping[str, Any]) -> bool:
    """On where the profile has an ``oracle`` section (2-D profiles) that enables it."""
    return "oracle" in cfg and cfg["oracle"]["enabled"] and base.is_2d(cfg) and cfg["data"]["name"] in CLOSED_FORM


def oracle_specs(cfg: Mapping[str, Any]) -> list[str]:
    if not oracle_on(cfg):
        return []
    prefixes = tuple(cfg["oracle"]["samplers"])
    return [s for s in base.sample_specs(cfg) if s.startswith(prefixes)]


def oracle_bank_ids(cfg: Mapping[str, Any]) -> list[str]:
    return [f"{ORACLE}/{spec}" for spec in oracle_specs(cfg)]


def oracle_jobs(cfg: Mapping[str, Any], data: str) -> list[base.Job]:
    """The model job; the banks come through ``dag.bank_ids`` (``oracle_bank_ids``), their sample jobs
    depending on the oracle's code through ``base.code(cfg, ..., "model:oracle")``."""
    if not oracle_on(cfg):
        return []
    files = base.model_files(cfg, ORACLE)
    return [base.Job("train", f"train-{ORACLE}",
                     ("trilemma", "oracle", "--profile", cfg["profile"], "--data", data, "--out", files[0]),
                     (data, *base.code(cfg, "oracle", f"model:{ORACLE}")),
                     files, ("teacher.schedule",))]


def report_tables(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    return TABLES if oracle_on(cfg) else ()


def report_figures(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    return FIGURES if oracle_on(cfg) else ()
