"""General: answers questions and writes text, through the standard agent loop (tools from agents.yaml)."""

from __future__ import annotations

from workbench.agents.agent import Limits
from workbench.agents.specialist import Specialist, SpecialistCall, SubtaskResult

SYSTEM_PROMPT = (
    "You are the General specialist. Answer the question or write the requested text, concisely and "
    "accurately. When results of earlier subtasks are given, build on them and cite them by their [id]. "
    "If something cannot be known from what you were given, say so instead of guessing."
)


def handle(call: SpecialistCall) -> SubtaskResult:
    return SubtaskResult.from_agent(call.subtask, call.run_loop())


SPECIALIST = Specialist(
    name="general",
    description="Answers questions and writes text: explanations (programming concepts and language features "
                "included, with a short example if asked), facts, summaries, emails; when no other specialist fits.",
    handler=handle,
    system_prompt=SYSTEM_PROMPT,
    keywords=("explain", "describe", "summarize", "summarise", "write", "essay", "email", "why", "what is"),
    limits=Limits(max_steps=4, max_tokens=6000, max_tokens_per_call=512, timeout_s=180),
)
