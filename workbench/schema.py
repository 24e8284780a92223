"""Strict configuration records: pydantic models (or pydantic dataclasses) that refuse unknown keys,
with fix-it errors.

    class RetrySettings(Strict):
        attempts: int = 3
    settings = parse(RetrySettings, {"atempts": 5}, "policy.yaml: retry")
    # ConfigError: policy.yaml: retry: unknown key(s) ['atempts']; allowed: attempts.

A typo in a YAML file fails once, at load, naming the key and the keys that exist, instead of being
ignored and leaving the default in place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from workbench.errors import ConfigError

M = TypeVar("M")
FORBID = ConfigDict(extra="forbid")  # for pydantic dataclasses: @dataclass(config=FORBID)
_UNKNOWN = ("extra_forbidden", "unexpected_keyword_argument")


class Strict(BaseModel):
    model_config = FORBID


def parse(model: type[M], data: Any, where: str) -> M:
    """`data` validated as `model`; a ConfigError lists unknown keys (with the allowed ones) and bad values."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {', '.join(field_names(model))}; got {data!r}.")
    try:
        return TypeAdapter(model).validate_python(dict(data))
    except ValidationError as exc:
        raise ConfigError(f"{where}: {describe(exc, model)}") from None


def field_names(model: type) -> list[str]:
    if dataclasses.is_dataclass(model):
        return [f.name for f in dataclasses.fields(model)]
    return list(model.model_fields)


def describe(exc: ValidationError, model: type) -> str:
    """Pydantic's errors as one line: unknown keys first, with the keys `model` does accept."""
    # extra_forbidden: a model's unknown key; unexpected_keyword_argument: a pydantic dataclass's
    unknown = [".".join(map(str, e["loc"])) for e in exc.errors() if e["type"] in _UNKNOWN]
    others = [e for e in exc.errors() if e["type"] not in _UNKNOWN]
    parts = []
    if unknown:
        top = all("." not in k for k in unknown)  # nested ones name their own path
        parts.append(f"Unknown key(s) {unknown}" + (f"; use some of: {', '.join(field_names(model))}." if top else "."))
    parts += [f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']} (got {e.get('input')!r})." for e in others]
    return " ".join(parts)
