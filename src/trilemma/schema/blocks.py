"""Building blocks of the config models (:mod:`trilemma.schema.models`): the strict, closed
:class:`Section` and the constrained scalar types.  Below the sampler registry, which defines each
sampler's section with them."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# ----------------------------------------------------------------------------- building blocks
PosInt = Annotated[int, Field(ge=1)]
NonNegInt = Annotated[int, Field(ge=0)]
EvenDim = Annotated[int, Field(ge=2, multiple_of=2)]
PosFloat = Annotated[float, Field(gt=0)]
Share = Annotated[float, Field(ge=0, le=1)]           # a probability or a ratio in [0, 1]
Decay = Annotated[float, Field(ge=0, lt=1)]           # an EMA decay or a dropout rate
RoundKey = Annotated[str, Field(pattern=r"^(default|s[0-9]+)$")]
StepKey = Annotated[str, Field(pattern=r"^s[0-9]+$")]
LrSchedule = Literal["constant", "cosine", "linear"]


def unique_list(item, *, min_length: int = 0):
    """A list without repeats (JSON schema ``uniqueItems``)."""
    return Annotated[list[item], Field(min_length=min_length, json_schema_extra={"uniqueItems": True})]


class Section(BaseModel):
    """A config section: unknown keys are an error, and values keep their YAML types (strict)."""
    model_config = ConfigDict(extra="forbid", strict=True)

    def plain(self) -> dict:
        """The values the profile states, as plain data (``model_dump(exclude_unset=True)``): equal, key
        order included, to this section of the resolved dict (tests/test_profiles.py).  What a
        fingerprint hashes, a model.json records and the DAG (Snakemake params) reads; an unset
        optional field is left out, so a model default never changes a job's params."""
        return self.model_dump(exclude_unset=True)

    @model_validator(mode="after")
    def _unique_lists(self):
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name in _unique_fields(type(self)) and len(value) != len({repr(v) for v in value}):
                raise ValueError(f"{name}: {value} has repeated items")
        return self


def _unique_fields(cls) -> set[str]:
    """Fields declared with :func:`unique_list` (their metadata carries ``uniqueItems``)."""
    out = set()
    for name, info in cls.model_fields.items():
        if any(isinstance(getattr(m, "json_schema_extra", None), dict) and m.json_schema_extra.get("uniqueItems")
               for m in info.metadata):
            out.add(name)
    return out


def D(description: str, default: Any = ..., **kw) -> Any:
    """A field with its human description (users read it in the generated schema)."""
    return Field(default, description=description, **kw)


