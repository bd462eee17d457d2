"""Dotted config keys (``"teacher.train"``): how a DAG job names the config values it reads
(``Job.params``) and how stages read one.  Below both :mod:`trilemma.config` (which re-exports
:func:`section`) and :mod:`trilemma.dag`, so neither imports the other for it."""
from __future__ import annotations

from typing import Any, Mapping


def section(cfg: Mapping[str, Any], dotted: str) -> Any:
    """``section(cfg, "teacher.train")`` -> the value at that dotted key."""
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node
