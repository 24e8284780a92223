"""Agents: a Director that plans, specialists that carry out subtasks, one readable agent loop.

    from workbench.agents import Agent, run_agent, plan, run_specialist, aggregate, topological_waves

Names are loaded on first use (PEP 562), so importing one agent module does not import them all.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Agent": "workbench.agents.agent",
    "Limits": "workbench.agents.agent",
    "Budget": "workbench.agents.guards",
    "Step": "workbench.agents.steps",
    "AgentResult": "workbench.agents.steps",
    "run_agent": "workbench.agents.loop",
    "run": "workbench.agents.loop",
    "Registry": "workbench.agents.registry",
    "default_registry": "workbench.agents.registry",
    "Specialist": "workbench.agents.specialist",
    "SubtaskResult": "workbench.agents.specialist",
    "run_specialist": "workbench.agents.registry",
    "Plan": "workbench.agents.director",
    "Subtask": "workbench.agents.director",
    "plan": "workbench.agents.director",
    "validate_plan": "workbench.agents.director",
    "topological_waves": "workbench.agents.director",
    "aggregate": "workbench.agents.director",
    "FinalAnswer": "workbench.agents.director",
    "DirectorSettings": "workbench.agents.director",
    "run_task": "workbench.agents.inline",
    "TaskResult": "workbench.agents.inline",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'workbench.agents' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


__all__ = list(_EXPORTS)
