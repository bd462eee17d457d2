"""The one configuration: ``params.yaml`` (the default ``toy`` profile) deep-merged with
``config/profiles/<profile>.yaml``, validated against ``schema/config.schema.json``.

Snakemake (``Snakefile``), DVC (``dvc.yaml`` params) and every ``trilemma`` verb read it through
:func:`load`, so the three readers can never disagree.  Command-line arguments carry paths and
wildcard values only, never hyperparameters.
"""
from __future__ import annotations

import copy
import json
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from trilemma import dag  # the grid of sample banks and distillation students the cross-key rules check
from trilemma.data.catalog import is_image_profile
from trilemma.keys import section  # also config.section, the name stages and tests use
from trilemma.sampling import registry

BASE_FILE = "params.yaml"
PROFILE_DIR = Path("config") / "profiles"


class ConfigError(ValueError):
    """A configuration problem, with a message that names the file, the key and the fix."""


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict:
    """Recursively merge ``override`` into a copy of ``base`` (override wins; lists are replaced)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def schema() -> dict:
    """``schema/config.schema.json`` with each sampler's piece (``sampling.<section>``) from its registry
    entry (``sampling/registry.py``)."""
    return registry.merge_schema(json.loads(resources.files("trilemma").joinpath("schema/config.schema.json").read_text()))


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def profile_files(profile: str | None, root: Path | str = ".") -> list[Path]:
    """The files that make up ``profile``: the base file, then the profile's override (if any)."""
    root = Path(root)
    files = [root / BASE_FILE]
    base_profile = _read_yaml(files[0]).get("profile")
    if profile and profile != base_profile:
        override = root / PROFILE_DIR / f"{profile}.yaml"
        if not override.exists():
            known = sorted(p.stem for p in (root / PROFILE_DIR).glob("*.yaml"))
            raise ConfigError(
                f"unknown profile '{profile}': no file {override}. "
                f"Known profiles: {', '.join([str(base_profile)] + known)}")
        files.append(override)
    return files


def _describe(error) -> str:
    if error.validator in ("oneOf", "anyOf") and error.context:   # name the key inside, not its parent
        error = best_match([error])
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"{where}: unknown key(s) {extra}; allowed keys here: {allowed}"
    if error.validator == "required":
        return f"{where}: {error.message}"
    if error.validator == "enum":
        return f"{where}: {error.instance!r} is not allowed; choose one of {error.validator_value}"
    if error.validator in ("minimum", "exclusiveMinimum"):
        return f"{where}: {error.instance!r} is too small (must be {'>=' if error.validator == 'minimum' else '>'} {error.validator_value})"
    return f"{where}: {error.message}"


def validate(cfg: Mapping[str, Any], source: str = BASE_FILE) -> None:
    """Validate against the JSON schema and the cross-key rules; raise one ConfigError listing all."""
    errors = sorted(Draft202012Validator(schema()).iter_errors(cfg), key=lambda e: list(e.absolute_path))
    problems = [_describe(e) for e in errors]
    if not problems:
        problems = _semantic_problems(cfg)
    if problems:
        raise ConfigError(f"invalid configuration ({source}):\n  - " + "\n  - ".join(problems))


def _semantic_problems(cfg: Mapping[str, Any]) -> list[str]:
    problems = []
    T = cfg["teacher"]["schedule"]["num_steps"]
    for family in ("ddpm", "ddim"):
        too_many = [s for s in cfg["sampling"][family]["steps"] if s > T]
        if too_many:
            problems.append(f"sampling.{family}.steps: {too_many} exceed teacher.schedule.num_steps = {T}")
    banks = set(dag.bank_ids(cfg))
    for key in ("sample_panels", "fast_sampling"):
        for bank in cfg["report"][key]:
            if bank not in banks:
                problems.append(f"report.{key}: '{bank}' is not a sample bank of this profile; "
                                f"known banks: {sorted(banks)}")
    problems += _distill_problems(cfg, "distill") + _distill_problems(cfg, "guidance") + _guidance_problems(cfg)
    if "ddgan" in cfg:
        if cfg["ddgan"]["coverage_steps"] not in cfg["ddgan"]["steps"]:
            problems.append(f"ddgan.coverage_steps = {cfg['ddgan']['coverage_steps']} must be one of "
                            f"ddgan.steps = {cfg['ddgan']['steps']}")
    if cfg["distill"]["teacher"].get("shared") and not cfg["guidance"]["enabled"]:
        problems.append("distill.teacher.shared: teacher_cfg needs guidance.enabled (the CFG teacher is trained there)")
    if cfg["evaluation"]["prc_neighborhood"] >= min(cfg["sampling"]["num_samples"], cfg["data"]["num_eval"]):
        problems.append("evaluation.prc_neighborhood must be smaller than the number of samples")
    return problems + _image_problems(cfg)


def _image_problems(cfg: Mapping[str, Any]) -> list[str]:
    """Image profiles: the image-only sections they need, and a U-Net for images (an MLP for points)."""
    image, name = is_image_profile(cfg), cfg["data"]["name"]
    kind = cfg["teacher"]["model"]["kind"]
    if image != (kind == "unet"):
        return [f"teacher.model.kind: {kind!r} does not fit data.name {name!r} (images need 'unet', points 'mlp')"]
    if not image:
        return []
    needed = [f"data.{name}", "evaluation.images", "teacher.model.unet", "distill.teacher.model.unet",
              "distill.rounds.hflip", "ddgan.image_model"]
    if (cfg["evaluation"].get("images") or {}).get("extractor") == "feature_net":
        needed.append("feature_net")
    if (cfg["evaluation"].get("images") or {}).get("extractor") == "inception":
        needed.append("evaluation.images.inception")
    missing = []
    for key in needed:
        try:
            section(cfg, key)
        except KeyError:
            missing.append(f"{key}: missing (image profiles need it; see config/profiles/fashion.yaml)")
    t = cfg["distill"]["teacher"]
    if t["model"]["kind"] != "unet":
        missing.append(f"distill.teacher.model.kind: {t['model']['kind']!r} on images; the distillation teacher needs 'unet'")
    if t["parameterization"] == "both":
        missing.append("distill.teacher.parameterization: 'both' is not available for the U-Net (one output per "
                       "pixel); use x, eps or v")
    g = cfg["guidance"]
    if g["enabled"]:
        if g["teacher"]["model"]["kind"] != "unet" or "unet" not in g["teacher"]["model"]:
            missing.append("guidance.teacher.model: image profiles need {kind: unet, unet: {preset: ...}} "
                           "(see config/profiles/fashion.yaml), or guidance.enabled: false")
        if "hflip" not in g["rounds"]:
            missing.append("guidance.rounds.hflip: missing (image profiles need it; see config/profiles/fashion.yaml)")
        if g["eval"]["classifier_scales"]:
            missing.append("guidance.eval.classifier_scales: classifier guidance is not built for image profiles; "
                           "set it to []")
    return missing


def _distill_problems(cfg: Mapping[str, Any], chain: str) -> list[str]:
    """A distillation chain (``distill`` or ``guidance``, stage two): powers of two, halving."""
    d, problems = cfg[chain], []
    for key in ("start_steps", "final_steps"):
        if d[key] & (d[key] - 1):
            problems.append(f"{chain}.{key}: {d[key]} is not a power of two (each round halves the steps)")
    if d["final_steps"] >= d["start_steps"]:
        problems.append(f"{chain}.final_steps ({d['final_steps']}) must be below start_steps ({d['start_steps']})")
    students = dag.student_steps(cfg, chain) if not problems else []
    if students and d["headline_steps"] not in students:
        problems.append(f"{chain}.headline_steps: {d['headline_steps']} is not a student of the chain {students}")
    return problems


def _guidance_problems(cfg: Mapping[str, Any]) -> list[str]:
    """The guidance grid: students that exist, w inside the range the student was trained on."""
    g, problems = cfg["guidance"], []
    students = dag.student_steps(cfg, "guidance")
    for n in g["eval"]["grid_steps"]:
        if n not in students:
            problems.append(f"guidance.eval.grid_steps: {n} is not a student of the chain {students}")
    for n in g["eval"]["stochastic_steps"]:
        if n % 2 or n // 2 not in students:
            problems.append(f"guidance.eval.stochastic_steps: {n} needs the {n // 2}-step student "
                            f"(the chain has {students})")
    lo, hi = g["stage1"]["w_min"], g["stage1"]["w_max"]
    if not lo < hi:
        problems.append(f"guidance.stage1: w_min ({lo}) must be below w_max ({hi})")
    for key in ("w", "grid_w"):
        outside = [w for w in g["eval"][key] if not lo <= w <= hi]
        if outside:
            problems.append(f"guidance.eval.{key}: {outside} outside [w_min, w_max] = [{lo}, {hi}]")
    if g["eval"]["headline_w"] not in g["eval"]["w"]:
        problems.append(f"guidance.eval.headline_w: {g['eval']['headline_w']} is not one of guidance.eval.w")
    if not set(g["eval"]["grid_w"]) <= set(g["eval"]["w"]):
        problems.append("guidance.eval.grid_w must be a subset of guidance.eval.w (fd_to_teacher needs "
                        "the reference bank at every w)")
    return problems


def load(profile: str | None = None, root: Path | str = ".") -> dict:
    """Load, merge and validate the configuration of ``profile`` (default: the base file's)."""
    files = profile_files(profile, root)
    cfg: dict = {}
    for f in files:
        cfg = deep_merge(cfg, _read_yaml(f))
    if profile:
        cfg["profile"] = profile
    validate(cfg, source=" + ".join(str(f) for f in files))
    return cfg
