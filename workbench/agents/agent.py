"""An agent is a small declared thing: name, description, model, tools, system prompt, limits.

    helper = Agent(name="helper", description="Answers questions about files.",
                   tools=[read_file], permissions={"reads_files"}, workspace=Path("ws"))
    for step in run_agent(helper, "What is in notes.txt?"): ...

The name and description are required (the Director offers agents to the model by them, as smolagents
does with managed agents). `model=None` means the configured default (agents.yaml, then WORKBENCH_MODEL).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from workbench.errors import ConfigError
from workbench.providers.base import Model
from workbench.schema import FORBID, parse
from workbench.tools import PERMISSIONS, Tool, Toolset

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")


@pydantic.dataclasses.dataclass(config=FORBID)
class Limits:
    max_steps: int = 6
    max_tokens: int | None = 8000  # input + output tokens of the whole run
    max_tokens_per_call: int = 512  # reply cap of one model call (small models repeat until stopped)
    budget_usd: float | None = None
    timeout_s: float | None = 300.0

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "limits") -> Limits:
        limits = parse(cls, data, where)
        if limits.max_steps < 1 or limits.max_tokens_per_call < 1:
            raise ConfigError(f"{where}: max_steps and max_tokens_per_call must be at least 1.")
        return limits

    def merged(self, overrides: dict[str, Any] | None, where: str = "limits") -> Limits:
        return Limits.from_dict({**dataclasses.asdict(self), **(overrides or {})}, where)


@dataclass
class Agent:
    name: str
    description: str
    system_prompt: str = "You are a helpful assistant. Answer briefly and precisely."
    tools: list[Tool] = field(default_factory=list)
    model: str | None = None
    limits: Limits = field(default_factory=Limits)
    permissions: frozenset[str] = frozenset()
    workspace: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)  # extra model options: temperature, seed, stop

    def __post_init__(self) -> None:
        if not NAME_RE.match(self.name or ""):
            raise ConfigError(f"Agent name {self.name!r} must be lowercase letters, digits, '-' or '_' "
                              f"(starting with a letter, at most 40 characters).")
        if not (self.description or "").strip():
            raise ConfigError(f"Agent {self.name!r} needs a description: the Director chooses agents by it.")
        self.permissions = frozenset(self.permissions)
        unknown = self.permissions - set(PERMISSIONS)
        if unknown:
            raise ConfigError(f"Agent {self.name!r}: unknown permission(s) {sorted(unknown)}; "
                              f"use some of: {', '.join(PERMISSIONS)}.")

    def toolset(self) -> Toolset:
        return Toolset(list(self.tools), self.permissions, self.workspace, self.name)


def resolve_model(model: Model | str | None) -> Model:
    """A Model instance as given, or one by name (None = WORKBENCH_MODEL) wrapped by the gateway."""
    if isinstance(model, Model):
        return model
    import workbench

    return workbench.get_model(model)
