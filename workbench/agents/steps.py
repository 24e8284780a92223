"""What an agent run records: one `Step` per loop iteration, one `AgentResult` per run.

A step is exactly what gets logged (`as_event()` -> the columns of the events table plus a JSON payload),
so a trace can be replayed from the log alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from workbench.tools import ToolCall

# Why a run stopped. Everything but "final_answer" means the run did not finish its job.
STOP_REASONS = ("final_answer", "max_steps", "loop_detected", "budget_exceeded", "timeout",
                "unparseable_output", "model_error")


@dataclass
class Step:
    number: int
    agent: str
    model: str | None = None
    model_input: list[dict[str, str]] = field(default_factory=list)
    model_output: str = ""
    action: dict[str, Any] | None = None  # parsed {"tool", "arguments"}; None when nothing parsed
    parsed_from: str | None = None  # how the action was read: schema, json, fenced_json, call_syntax, text
    tool_calls: list[ToolCall] = field(default_factory=list)
    final_answer: str | None = None
    error: str | None = None
    stop_reason: str | None = None  # set on the last step only
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    started_at: float = 0.0  # epoch seconds (comparable across worker processes)
    duration_ms: float = 0.0

    def as_event(self) -> dict[str, Any]:
        """Fields for `emit("agent_step", **step.as_event())`: event columns + a JSON payload."""
        return {
            "agent": self.agent,
            "model": self.model,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost_usd": self.cost_usd,
            "duration_ms": round(self.duration_ms, 3),
            "error": self.error,
            "payload": {
                "step": self.number,
                "started_at": self.started_at,
                "model_input": self.model_input,
                "model_output": self.model_output,
                "action": self.action,
                "parsed_from": self.parsed_from,
                "tool_calls": [c.as_dict() for c in self.tool_calls],
                "final_answer": self.final_answer,
                "stop_reason": self.stop_reason,
            },
        }


@dataclass
class AgentResult:
    """The outcome of one agent run, summed over its steps."""

    agent: str
    ok: bool
    output: str
    stop_reason: str
    error: str | None = None
    model: str | None = None
    steps: list[Step] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0

    @classmethod
    def from_steps(cls, agent: str, steps: list[Step]) -> AgentResult:
        last = steps[-1]
        output = last.final_answer if last.final_answer is not None else last.model_output
        return cls(
            agent=agent,
            ok=last.stop_reason == "final_answer",
            output=output or "",
            stop_reason=last.stop_reason or "max_steps",
            error=last.error if last.stop_reason != "final_answer" else None,
            model=next((s.model for s in reversed(steps) if s.model), None),
            steps=steps,
            tokens_in=sum(s.tokens_in for s in steps),
            tokens_out=sum(s.tokens_out for s in steps),
            cost_usd=sum(s.cost_usd for s in steps),
            duration_ms=sum(s.duration_ms for s in steps),
        )

    def as_dict(self, with_steps: bool = False) -> dict[str, Any]:
        out = asdict(self)
        out["steps"] = [s.as_event() for s in self.steps] if with_steps else len(self.steps)
        return out
