"""Config mutations generated from the resolved configuration and the schema (issue 20): for every leaf
key, a value of the wrong type; where the schema bounds it (minimum/maximum, exclusive or not, enum),
a value just outside; where the schema requires it, its deletion.  Torch-free."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from jsonschema import Draft202012Validator

WRONG_TYPE = {str: 12345, bool: "yes", int: "many", float: "many", list: "many", type(None): {"oops": 1}}


@dataclass(frozen=True)
class Mutation:
    kind: str                 # wrong_type | out_of_range | delete_required
    path: tuple[str, ...]     # the leaf key
    value: Any = None         # the new value (unused for delete_required)

    @property
    def key(self) -> str:
        return ".".join(map(str, self.path))

    def apply(self, cfg: Mapping[str, Any]) -> dict:
        out = copy.deepcopy(dict(cfg))
        parent = out
        for k in self.path[:-1]:
            parent = parent[k]
        if self.kind == "delete_required":
            del parent[self.path[-1]]
        else:
            parent[self.path[-1]] = self.value
        return out


def child_schema(schema: Mapping[str, Any], key: str, value: Any) -> Mapping[str, Any]:
    """The subschema that validates ``value`` under ``key`` of an object ``schema`` (the matching
    ``oneOf``/``anyOf`` branch resolved); {} when the schema says nothing about the key."""
    import re
    if key in schema.get("properties", {}):
        sub = schema["properties"][key]
    else:
        sub = next((s for pat, s in schema.get("patternProperties", {}).items() if re.search(pat, key)),
                   schema.get("additionalProperties"))
    if not isinstance(sub, Mapping):
        return {}
    return branch(sub, value)


def branch(schema: Mapping[str, Any], value: Any) -> Mapping[str, Any]:
    for combinator in ("oneOf", "anyOf"):
        for option in schema.get(combinator, []):
            if Draft202012Validator(option).is_valid(value):
                return {**{k: v for k, v in schema.items() if k != combinator}, **branch(option, value)}
    return schema


def leaves(cfg: Mapping[str, Any], schema: Mapping[str, Any], path=()) -> Iterator[tuple[tuple, Any, Mapping, Mapping]]:
    """(path, value, the value's schema, the parent's schema) of every leaf key (a non-mapping value)."""
    for key, value in cfg.items():
        sub = child_schema(schema, key, value)
        if isinstance(value, Mapping):
            yield from leaves(value, sub, (*path, key))
        else:
            yield (*path, key), value, sub, schema


def out_of_range(value: Any, sub: Mapping[str, Any]) -> list[Any]:
    """Values just outside each bound the schema sets (for a list: its first item out of the items' bounds)."""
    if isinstance(value, list):
        items = sub.get("items")
        if value and isinstance(items, Mapping):
            return [[bad, *value[1:]] for bad in out_of_range(value[0], branch(items, value[0]))]
        return []
    if isinstance(value, bool):
        return []
    bad = []
    if "enum" in sub:
        bad.append("not-one-of-the-options")
    if isinstance(value, (int, float)):
        step = 1 if isinstance(value, int) and not isinstance(value, bool) else 0.5
        for kw, sign, strict in (("minimum", -1, True), ("exclusiveMinimum", -1, False),
                                 ("maximum", 1, True), ("exclusiveMaximum", 1, False)):
            if kw in sub:
                bound = sub[kw]
                bad.append(bound + sign * step if strict else bound)
    return bad


def inline_refs(schema: Any, defs: Mapping[str, Any] | None = None) -> Any:
    """The schema with every ``$ref`` to ``#/$defs/<name>`` replaced by its definition (the schema is
    generated from pydantic models, which share definitions through ``$defs``)."""
    if defs is None:
        defs = schema.get("$defs", {}) if isinstance(schema, Mapping) else {}
    if isinstance(schema, Mapping):
        if "$ref" in schema:
            target = inline_refs(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
            return {**target, **{k: inline_refs(v, defs) for k, v in schema.items() if k != "$ref"}}
        return {k: inline_refs(v, defs) for k, v in schema.items() if k != "$defs"}
    if isinstance(schema, list):
        return [inline_refs(v, defs) for v in schema]
    return schema


def mutations(cfg: Mapping[str, Any], schema: Mapping[str, Any]) -> list[Mutation]:
    schema = inline_refs(schema)
    out = []
    for path, value, sub, parent in leaves(cfg, schema):
        out.append(Mutation("wrong_type", path, WRONG_TYPE[type(value)]))
        out += [Mutation("out_of_range", path, bad) for bad in out_of_range(value, sub)]
        if path[-1] in parent.get("required", []):
            out.append(Mutation("delete_required", path))
    return out
