"""Specialists: a declared name + description + handler, and the records a subtask goes in and out as
(Subtask, SpecialistCall, SubtaskResult). `workbench.agents.registry.run_specialist` runs one.

A handler is `fn(call: SpecialistCall) -> SubtaskResult`. Anything it raises becomes a failed result
(failure isolation): one broken specialist fails its subtask, never the task.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from workbench.agents.agent import Agent, Limits
from workbench.agents.guards import Budget
from workbench.agents.steps import AgentResult
from workbench.errors import PlanError
from workbench.providers.base import Model
from workbench.tools import Tool
from workbench.tools.catalog import resolve
from workbench.tools.mcp_client import PREFIX as MCP_PREFIX

CONTEXT_CHARS = 1500  # per dependency: a small model's context window is shared by every input
REQUEST_CHARS = 2000  # the user's own words carried beside a subtask's instructions


@dataclass
class Subtask:
    id: str
    specialist: str
    instructions: str  # the Director's words: this subtask's part of the request
    depends_on: list[str] = field(default_factory=list)
    request: str = ""  # the user's own words, the whole request (empty: the instructions are all there is)

    @classmethod
    def coerce(cls, value: Subtask | Mapping[str, Any]) -> Subtask:
        if isinstance(value, Subtask):
            return value
        try:
            return cls(id=str(value["id"]), specialist=str(value["specialist"]),
                       instructions=str(value["instructions"]), depends_on=[str(d) for d in value.get("depends_on") or []],
                       request=str(value.get("request") or ""))
        except (KeyError, TypeError, AttributeError) as exc:
            raise PlanError(f"A subtask needs id, specialist and instructions (and optional depends_on); "
                            f"got {value!r} ({exc}).") from None

    def brief(self) -> str:
        """What the specialist is asked to do: the instructions, and beside them the user's own words, so a
        paraphrase cannot change the request (a Director once turned "median" into "mean")."""
        request = " ".join(self.request.split())[:REQUEST_CHARS]
        if not request or " ".join(self.instructions.split()) == request:
            return self.instructions
        return (f"{self.instructions.strip()}\n\nThis is your part of the user's request; do only this part. "
                f"The whole request, in the user's own words (where they differ from the above, the user's "
                f"words win): \"{request}\"")

    def briefed(self) -> Subtask:
        """A copy whose instructions are the brief: what a specialist's handler reads."""
        return Subtask(self.id, self.specialist, self.brief(), list(self.depends_on))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SubtaskResult:
    subtask_id: str
    specialist: str
    ok: bool
    output: str = ""
    status: str = "done"  # done | failed | skipped
    data: dict[str, Any] = field(default_factory=dict)  # specialist-specific: sql + rows, code + executed, ...
    error: str | None = None
    stop_reason: str | None = None
    model: str | None = None
    steps: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0

    @classmethod
    def from_agent(cls, subtask: Subtask, result: AgentResult, data: dict[str, Any] | None = None,
                   output: str | None = None) -> SubtaskResult:
        return cls(
            subtask_id=subtask.id, specialist=subtask.specialist, ok=result.ok,
            output=result.output if output is None else output, status="done" if result.ok else "failed",
            data=data or {}, error=result.error, stop_reason=result.stop_reason, model=result.model,
            steps=len(result.steps), tokens_in=result.tokens_in, tokens_out=result.tokens_out,
            cost_usd=result.cost_usd, duration_ms=result.duration_ms,
        )

    @classmethod
    def failed(cls, subtask: Subtask, error: str, stop_reason: str = "error") -> SubtaskResult:
        return cls(subtask.id, subtask.specialist, ok=False, status="failed", error=error, stop_reason=stop_reason)

    @classmethod
    def skipped(cls, subtask: Subtask, reason: str) -> SubtaskResult:
        """For the executor: a dependent of a failed subtask is not run."""
        return cls(subtask.id, subtask.specialist, ok=False, status="skipped", error=reason, stop_reason="skipped")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SubtaskResult:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def as_context(self) -> str:
        """How a dependent sees this result."""
        text = self.output if self.ok else f"(this subtask {self.status}: {self.error})"
        return text if len(text) <= CONTEXT_CHARS else text[:CONTEXT_CHARS] + " [...]"


@dataclass
class SpecialistCall:
    """Everything a handler needs for one subtask. `subtask.instructions` is the subtask's brief: the
    Director's instructions with the user's own words beside them (Subtask.brief)."""

    subtask: Subtask
    context: dict[str, str]  # dependency id -> its result as text
    agent: Agent
    model: Model | str | None
    budget: Budget
    task_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.subtask = self.subtask.briefed()

    def run_loop(self, task: str | None = None) -> AgentResult:
        """The standard agent loop on this subtask (or on `task`), with its context, model and budget."""
        from workbench.agents.loop import run

        return run(self.agent, task or self.subtask.instructions, context=self.context or None, model=self.model,
                   budget=self.budget, task_id=self.task_id)


Handler = Callable[[SpecialistCall], SubtaskResult]
HealthCheck = Callable[["Specialist"], tuple[bool, str]]


@dataclass
class Specialist:
    name: str
    description: str  # one line: the Director's prompt shows it to choose the specialist
    handler: Handler
    system_prompt: str = ""
    keywords: tuple[str, ...] = ()  # task words that make this the best guess when a plan falls back
    tools: tuple[str | Tool, ...] = ()  # Tool objects or names in workbench.tools.catalog
    permissions: frozenset[str] = frozenset()
    limits: Limits = field(default_factory=Limits)
    model: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # specialist-specific settings (agents.yaml)
    health: HealthCheck | None = None
    writes_tests: bool = False  # tests its own work: the Director folds a tests-only subtask into its code subtask
    # Whether a request is this specialist's kind of work at all, from its words (cheap, no model): the router
    # asks again among the others when its model picks a specialist that declines (None: accepts everything).
    accepts: Callable[[str], bool] | None = None

    def brief(self) -> str:
        """The line the Director shows to choose this specialist: its description and, when it holds tools, their
        names (a request that names a tool must reach the specialist holding it). No tool is resolved here:
        naming an external MCP server's tool must not start that server."""
        labels = [_tool_label(t) for t in self.tools]
        return self.description + (f" Its tools: {', '.join(labels)}." if labels else "")

    def agent(self) -> Agent:
        tools = resolve(self.tools, f"Specialist {self.name!r}")
        workspace = _workspace() if any(t.path_params for t in tools) else None
        return Agent(name=self.name, description=self.description, system_prompt=self.system_prompt or
                     Agent.system_prompt, tools=tools, model=self.model, limits=self.limits,
                     permissions=self.permissions, workspace=workspace, options={"temperature": 0.0})


def _tool_label(item: str | Tool) -> str:
    if isinstance(item, Tool):
        return item.name
    if not item.startswith(MCP_PREFIX):
        return item
    server, _, tool_name = item.removeprefix(MCP_PREFIX).partition("/")
    return f"{tool_name} (on the {server} MCP server)" if tool_name else f"the {server} MCP server's tools"


def _workspace() -> Path:
    from workbench.config import get_settings

    settings = get_settings()
    path = settings.agent_workspace or settings.home / "workspace"
    path.mkdir(parents=True, exist_ok=True)
    return path
