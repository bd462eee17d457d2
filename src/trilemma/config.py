"""The one configuration: a profile's file ``config/profiles/<profile>.yaml`` composed over the files
its ``defaults`` list names (``base`` = ``config/base.yaml``, or another profile, itself composed),
merged in order and validated against the pydantic models of :mod:`trilemma.schema.models`.

Snakemake (``Snakefile``), DVC and every ``trilemma`` verb read it through :func:`load`, so the
readers can never disagree.  DVC reads the resolved values from each profile's params file
(:func:`params_file`: ``params.yaml`` for the default profile, ``pipelines/<profile>/params.yaml``
for the others), written by ``trilemma config --write`` and drift-tested (tests/test_profiles.py),
so ``dvc status`` sees a change made anywhere in a profile's chain.  Command-line arguments carry
paths and wildcard values only, never hyperparameters.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
import typing
from pathlib import Path
from typing import Any, Mapping

import yaml
from pydantic import ValidationError

from trilemma.keys import section  # also config.section, the name stages and tests use
from trilemma.schema import models

DEFAULT_PROFILE = "toy"
CONFIG_DIR = Path("config")
BASE_FILE = CONFIG_DIR / "base.yaml"
PROFILE_DIR = CONFIG_DIR / "profiles"
PARAMS_FILE = "params.yaml"
SCHEMA_FILE = Path("src") / "trilemma" / "schema" / "config.schema.json"


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
    """The JSON schema of the configuration, generated from :class:`trilemma.schema.models.Config`."""
    return models.json_schema()


def schema_text() -> str:
    return json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str):
    """``yaml.safe_load`` through libyaml's parser where PyYAML has it: the same types and values (the
    tag resolution and construction are PyYAML's own, in Python): the toy's params file in 1.7 ms
    instead of 12.1 ms, read by every job."""
    return yaml.load(text, Loader=_LOADER)


def _read_yaml(path: Path) -> dict:
    try:
        data = safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    return data


def profiles(root: Path | str = ".") -> list[str]:
    """Every profile: the default first, then the others by name."""
    names = sorted(p.stem for p in (Path(root) / PROFILE_DIR).glob("*.yaml"))
    return [DEFAULT_PROFILE] + [n for n in names if n != DEFAULT_PROFILE]


def _file_of(name: str, root: Path) -> Path:
    if name == "base":
        return root / BASE_FILE
    path = root / PROFILE_DIR / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown profile '{name}': no file {path}. Known profiles: {', '.join(profiles(root))}")
    return path


def profile_files(profile: str | None, root: Path | str = ".") -> list[Path]:
    """The files that make up ``profile`` in merge order: its ``defaults`` (depth first), then itself."""
    root = Path(root)

    def chain(path: Path, seen: tuple[Path, ...]) -> list[Path]:
        if path in seen:
            raise ConfigError(f"{path}: its defaults list includes itself ({' -> '.join(map(str, seen + (path,)))})")
        defaults = _read_yaml(path).get("defaults", []) if path.name != BASE_FILE.name or path.parent != root / CONFIG_DIR else []
        if not isinstance(defaults, list) or not all(isinstance(d, str) for d in defaults):
            raise ConfigError(f"{path}: defaults must be a list of names (base, or a profile)")
        out: list[Path] = []
        for name in defaults:
            out += [f for f in chain(_file_of(name, root), seen + (path,)) if f not in out]
        return out + [path]

    return chain(_file_of(profile or DEFAULT_PROFILE, root), ())


def params_file(profile: str | None) -> str:
    """The file DVC reads the resolved values of ``profile`` from (relative to the repository root)."""
    p = profile or DEFAULT_PROFILE
    return PARAMS_FILE if p == DEFAULT_PROFILE else f"pipelines/{p}/params.yaml"


def resolve(profile: str | None = None, root: Path | str = ".") -> tuple[dict, str]:
    """The merged, not yet validated configuration of ``profile`` and a description of its files."""
    files = profile_files(profile, root)
    cfg: dict = {}
    for f in files:
        cfg = deep_merge(cfg, {k: v for k, v in _read_yaml(f).items() if k != "defaults"})
    cfg["profile"] = profile or DEFAULT_PROFILE
    return cfg, " + ".join(str(f.relative_to(root)) if f.is_relative_to(root) else str(f) for f in files)


def _where(data: Any, loc: tuple) -> list[str]:
    """The dotted key of a pydantic error location, without the union-member tags it inserts."""
    parts, node, tagged = [], data, None
    for i, part in enumerate(loc):
        if isinstance(node, Mapping) and node.get("kind") == part and i < len(loc) - 1 and tagged is not node:
            tagged = node
            continue   # the tag of a discriminated union (model kinds), once per node
        if isinstance(node, Mapping) and part in node:
            parts.append(str(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            parts.append(str(part))
            node = node[part]
        elif i == len(loc) - 1 and isinstance(node, Mapping) and isinstance(part, str) and not part.startswith(("function-", "dict[", "list[")):
            parts.append(str(part))   # a missing key
    return parts


_TYPE_NAMES = {"int_type": "integer", "float_type": "number", "string_type": "string", "bool_type": "boolean",
               "list_type": "array", "dict_type": "object", "model_type": "object", "none_required": "null"}


def _describe(error: dict, data: Any) -> str:
    parts = _where(data, error["loc"])
    where = ".".join(parts) or "(top level)"
    kind, ctx, value = error["type"], error.get("ctx", {}), error.get("input")
    if kind == "extra_forbidden":
        parent = ".".join(parts[:-1]) or "(top level)"
        return f"{parent}: unknown key(s) [{parts[-1]!r}]; allowed keys here: {_allowed(parts[:-1], data)}"
    if kind == "missing":
        return f"{'.'.join(parts[:-1]) or '(top level)'}: {parts[-1]!r} is a required property"
    if kind in _TYPE_NAMES:
        return f"{where}: {value!r} is not of type {_TYPE_NAMES[kind]!r}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):   # the discriminator (a model's kind)
        tag = str(ctx.get("discriminator", "kind")).strip("'")
        return f"{where}.{tag}: {ctx.get('tag', value)!r} is not allowed; choose one of {ctx.get('expected_tags', '')}"
    if kind == "literal_error":
        return f"{where}: {value!r} is not allowed; {error['msg'].replace('Input should be', 'choose')}"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return f"{where}: {value!r} is too small (must be {'>=' if kind == 'greater_than_equal' else '>'} {bound})"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"{where}: {value!r} is too large (must be {'<=' if kind == 'less_than_equal' else '<'} {bound})"
    if kind == "value_error":   # a model validator's rules: one message per line, each naming its key
        return str(ctx.get("error", error["msg"]))
    return f"{where}: {error['msg']} (got {value!r})"


def _allowed(parts: list[str], data: Any) -> list[str]:
    """The keys the model at a dotted location accepts (a union member: the one of the value's kind)."""
    node: Any = models.Config
    for part in parts:
        fields = getattr(node, "model_fields", None)
        if fields is None or part not in fields:
            return []
        data = data.get(part) if isinstance(data, Mapping) else None
        node = _model_in(fields[part].annotation, data)
    return sorted(getattr(node, "model_fields", {}))


def _model_in(annotation: Any, data: Any) -> Any:
    """The model class inside an annotation (Optional, a union on ``kind``: the value's member)."""
    members = [annotation] if isinstance(annotation, type) else list(typing.get_args(annotation))
    found = []
    for m in members:
        if isinstance(m, type) and issubclass(m, models.BaseModel):
            found.append(m)
        elif not isinstance(m, type):
            found += [x for x in [_model_in(m, data)] if x is not None]
    kind = data.get("kind") if isinstance(data, Mapping) else None
    return next((m for m in found if "kind" in m.model_fields and kind in typing.get_args(m.model_fields["kind"].annotation)),
                found[0] if found else None)


def validate(cfg: Mapping[str, Any], source: str = PARAMS_FILE) -> dict:
    """Validate against the models (types, closed sections, cross-key rules); raise one ConfigError
    listing every problem.  Returns ``cfg`` with its keys in the models' order."""
    return models.key_order_like(dict(cfg), typed(cfg, source))


def typed(cfg: Mapping[str, Any], source: str = PARAMS_FILE) -> models.Config:
    """``cfg`` as the typed model (:func:`validate`'s errors), whose sections the stages read."""
    try:
        model = models.Config.model_validate(dict(cfg))
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            for line in _describe(error, cfg).split("\n"):
                if line not in problems:
                    problems.append(line)
        raise ConfigError(f"invalid configuration ({source}):\n  - " + "\n  - ".join(problems)) from None
    return model


def digest(cfg: Mapping[str, Any]) -> str:
    """A short digest of a resolved configuration's values (key order aside)."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


_DIGEST = re.compile(r"^# sources digest: ([0-9a-f]{16})$", re.M)


def params_edit(profile: str | None, root: Path | str = ".") -> tuple[dict, dict | None, str]:
    """(the sources' resolved config, the params file's values where they are newer, the sources).

    The params file is generated from the sources and records their digest.  Its values win where
    the file was edited after generation and the sources were not (``dvc exp run -S key=value``
    edits it); the sources win where they were edited and the file was not (it is merely stale);
    both edited is an error."""
    cfg, source = resolve(profile, root)
    path = Path(root) / params_file(profile)
    if not path.exists():
        return cfg, None, source
    text = path.read_text()
    values, recorded = safe_load(text), _DIGEST.search(text)
    if values == cfg or (recorded and recorded[1] == digest(values)):
        return cfg, None, source   # in sync, or only the sources changed since generation
    if recorded is None or recorded[1] == digest(cfg):   # no digest: a tool rewrote it without comments
        return cfg, values, source
    raise ConfigError(f"{path} and {source} were both edited since `trilemma config --write` generated it: "
                      f"put the change into the profile's file, then run `trilemma config --write`")


def load(profile: str | None = None, root: Path | str = ".") -> dict:
    """Compose, merge and validate the configuration of ``profile`` (default: ``toy``); where its
    params file was edited after generation (``dvc exp run -S``), its values (:func:`params_edit`).
    The plain resolved dict: what the DAG, Snakemake's params and DVC read."""
    return load_typed(profile, root).plain()


def load_typed(profile: str | None = None, root: Path | str = ".") -> models.Config:
    """:func:`load` as the typed model: what every stage reads, a section at a time
    (``cfg.teacher.train.lr``; ``section.plain()`` for a fingerprint or a model.json)."""
    cfg, edited, source = params_edit(profile, root)
    if edited is not None:
        return typed(edited, source=f"{params_file(profile)}, edited after generation from {source}")
    return typed(cfg, source=source)


def render(cfg: Mapping[str, Any], source: str) -> str:
    """The resolved configuration as YAML: a profile's params file (what DVC reads) and its golden file."""
    header = (f"# Generated by `trilemma config --write` from {source}: the resolved\n"
              f"# configuration of the `{cfg['profile']}` profile, which DVC reads (params). Edit the profile's\n"
              f"# files and rerun it (make dvc.yaml does); tests/test_profiles.py fails when it drifts. An edit\n"
              f"# here (dvc exp run -S) is used while the profile's files are unchanged (config.params_edit).\n"
              f"# sources digest: {digest(cfg)}\n")
    return header + yaml.safe_dump(dict(cfg), sort_keys=False, width=120, allow_unicode=True, default_flow_style=None)
