"""Dotted config keys (``"teacher.train"``): how a DAG job names the config values it reads
(``Job.params``) and how stages read one; and which entry of a per-round value a round reads.  Below
both :mod:`trilemma.config` (which re-exports :func:`section`) and :mod:`trilemma.dag`, so neither
imports the other for it."""
from __future__ import annotations

from typing import Any, Mapping


def section(cfg: Mapping[str, Any], dotted: str) -> Any:
    """``section(cfg, "teacher.train")`` -> the value at that dotted key."""
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def round_entry(value: Any, steps: int) -> str | None:
    """The entry of a per-round value ``{default, s<N>}`` read by the round that makes the
    ``steps``-step student: ``s<steps>`` if there is one, else ``default``; None for a plain value
    (one for every round).  The DAG's key of it (``dag.round_key``) and the typed rounds' value
    (``schema.models.PerRound``) both come from here, so a round reads the key its job declares."""
    if not isinstance(value, Mapping):
        return None
    key = f"s{steps}"
    return key if key in value else "default"
