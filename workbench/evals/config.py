"""An experiment's configuration: one YAML file, checked by pydantic; an unknown key is refused by name.

    # configs/greedy.yaml
    name: greedy            # default: the file's stem
    model: local:qwen2.5-coder-1.5b
    mode: single            # single | loop | resample | agent
    temperature: 0
    seed: 1
    max_tokens: 1024
    loop: {max_rounds: 3}   # mode loop
    samples: 4              # mode resample: at most this many samples
    budget_from: loop       # mode resample: sample up to the tokens the configuration named `loop` spent on
                            # each case instead (HumanEval's resampling at the loop's budget)
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbench.errors import ConfigError, field_errors

Mode = Literal["single", "loop", "resample", "agent"]


class LoopSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_rounds: int = Field(3, ge=1, le=10)


class ExperimentConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(..., min_length=1, max_length=80, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    model: str | None = Field(None, description="provider:model or alias; the default model when omitted")
    mode: Mode = "single"
    temperature: float = Field(0.0, ge=0, le=2)
    seed: int | None = None
    max_tokens: int = Field(1024, ge=1, le=32768)
    loop: LoopSettings = Field(default_factory=LoopSettings)
    samples: int = Field(4, ge=1, le=50, description="resample: at most this many samples")
    prompt_version: str | None = Field(None, description="a label for the prompt the cases use (recorded only)")
    budget_from: str | None = Field(None, min_length=1, max_length=80,
                                    description="resample: the configuration whose tokens per case are the budget")
    memory: bool = Field(False, description="agent: the cases' tasks use memory (retrieval, the execution cache, "
                                            "verified solutions kept), an owner of this experiment's own, so "
                                            "it starts empty and learns in case order")

    @model_validator(mode="after")
    def _budget_for_resample(self) -> ExperimentConfig:
        if self.budget_from is not None and self.mode != "resample":
            raise ValueError(f"budget_from sets a resampling budget; mode {self.mode} does not resample "
                             f"(use mode: resample, or drop budget_from)")
        if self.memory and self.mode != "agent":
            raise ValueError(f"memory is used by the agents (mode: agent); mode {self.mode} calls the model "
                             f"directly (use mode: agent, or drop memory)")
        if self.budget_from == self.name:
            raise ValueError("budget_from names this configuration itself; name the loop configuration")
        return self

    def digest(self) -> str:
        """Equal settings hash alike (a resumed run finds its experiment by this)."""
        settings = self.model_dump()
        for key, default in (("budget_from", None), ("memory", False)):  # experiments started before the
            if settings[key] == default:                                   # setting existed still resume
                del settings[key]
        return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def parse(data: object, where: str) -> ExperimentConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of settings (model, mode, temperature, ...).")
    try:
        return ExperimentConfig(**data)
    except ValidationError as exc:
        errors = exc.errors()
        unknown = [".".join(str(p) for p in e["loc"]) for e in errors if e["type"] == "extra_forbidden"]
        if unknown:
            known = ", ".join(ExperimentConfig.model_fields)
            raise ConfigError(f"{where}: unknown key {', '.join(repr(k) for k in unknown)}; known keys: {known}.") from None
        whole = [e["msg"].removeprefix("Value error, ") for e in errors if not e.get("loc")]  # across fields
        fields = [e for e in errors if e.get("loc")]
        raise ConfigError(f"{where}: {'; '.join([*whole, field_errors(fields)] if fields else whole)}.") from None


def load(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"Cannot read the configuration {path}: {exc.strerror or exc}.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path.name}: not valid YAML ({str(exc).splitlines()[0]}).") from None
    if isinstance(data, dict):
        data = {"name": path.stem, **data}
    return parse(data, path.name)
