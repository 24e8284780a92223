"""A case: what a model is asked (`input`) and how its answer is judged (`expected` and/or a `checker`).

    Case(id="add", input="What is 2+2? Answer with the number only.", expected="4")          # exact match
    Case(id="HumanEval/0", input="...", checker={"kind": "humaneval", "prompt": ..., "test": ..., ...})

A case without a checker is judged by exact match with `expected` (trimmed); a case with neither cannot
be judged and is refused when it is imported, naming its row.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workbench.errors import WorkbenchError, field_errors

MAX_ID_CHARS = 200


class DatasetError(WorkbenchError):
    """Bad dataset input: a malformed row, an unknown format, a name that cannot be used."""

    http_status = 422
    exit_code = 2


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(..., min_length=1, max_length=MAX_ID_CHARS)
    input: str = Field(..., min_length=1)
    expected: str | None = None
    checker: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)

    @field_validator("id", "input")
    @classmethod
    def _visible(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        if "\x00" in value:
            raise ValueError("contains NUL bytes (\\x00), which cannot be stored")
        return value

    @model_validator(mode="after")
    def _judgeable(self) -> Case:
        from workbench.evals import checkers

        kind = self.checker_kind
        if kind not in checkers.CHECKERS:
            raise ValueError(f"checker kind {kind!r} is unknown; one of {', '.join(sorted(checkers.CHECKERS))}")
        checkers.CHECKERS[kind].validate(self)
        return self

    @property
    def checker_kind(self) -> str:
        return str(self.checker.get("kind") or "exact")

    @classmethod
    def parse(cls, data: Any, where: str) -> Case:
        """A case from one row of input; DatasetError naming `where` (the file and row) and the reason."""
        if not isinstance(data, dict):
            raise DatasetError(f"{where}: expected an object with id and input, got {type(data).__name__}.")
        try:
            return cls(**data)
        except ValidationError as exc:
            raise DatasetError(f"{where}: {_reasons(exc)}.") from None
        except TypeError as exc:
            raise DatasetError(f"{where}: {exc}.") from None


def _reasons(exc: ValidationError) -> str:
    """Pydantic's errors as one line: `field: reason` for a field, the bare reason for the whole row."""
    whole = [e["msg"].removeprefix("Value error, ") for e in exc.errors() if not e.get("loc")]
    fields = [e for e in exc.errors() if e.get("loc")]
    return "; ".join([*whole, field_errors(fields)] if fields else whole)


def content_hash(cases: list[Case]) -> str:
    """The same cases in the same order hash alike, whatever file or loader they came from."""
    digest = hashlib.sha256()
    for case in cases:
        digest.update(json.dumps(case.model_dump(), sort_keys=True, ensure_ascii=False).encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()


def check_unique(cases: list[Case], where: str) -> None:
    seen: dict[str, int] = {}
    for i, case in enumerate(cases, 1):
        if case.id in seen:
            raise DatasetError(f"{where}: row {i}: case id {case.id!r} repeats row {seen[case.id]}; ids must be unique.")
        seen[case.id] = i
    if not cases:
        raise DatasetError(f"{where}: no cases. A dataset needs at least one row with id and input.")
