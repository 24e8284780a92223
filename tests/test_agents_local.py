"""A few agent checks on the real local test model (structure only, never exact wording).

Kept small on purpose (2 shared cores): tight caps on plan size, lengths and tokens."""

from __future__ import annotations

import pytest
from agent_data import make_events_db

from workbench.agents.director import plan, route_task, topological_waves, validate_plan
from workbench.agents.registry import Registry, run_specialist

SMALL = """
director: {max_subtasks: 3, max_tokens: 220, reasoning_max_chars: 100, instructions_max_chars: 140, timeout_s: 600}
specialists:
  data:
    limits: {max_steps: 2, max_tokens: 3000, max_tokens_per_call: 120, timeout_s: 600}
"""


@pytest.fixture
def registry(tmp_path) -> Registry:
    path = tmp_path / "agents.yaml"
    path.write_text(SMALL)
    return Registry.from_config(path)


def test_director_plans_a_two_part_task(test_model, registry):
    task = ("Compare the average cost per task of each model in the execution log, "
            "then write a Python function that computes a median")
    p = plan(task, registry=registry, model=test_model)
    assert p.attempts and p.attempts[0]["tokens_out"] > 0, p.attempts  # the real model was asked
    # The model's own plan (first answer or after one correction), never the one-step fallback, which
    # would pass every check below without any planning.
    assert p.source in ("model", "reasked"), (p.source, p.attempts)
    validate_plan(p.as_dict(), registry)  # the plan the executor gets is valid
    assert 1 <= len(p.subtasks) <= 3
    assert {s.specialist for s in p.subtasks} <= set(registry.names())
    assert sum(len(w) for w in topological_waves(p)) == len(p.subtasks)


@pytest.mark.parametrize("request_text", ["Write a Python function is_prime(n) with tests.",
                                          "Write a Python function is_palindrome(s) that ignores case and spaces, "
                                          "with tests."])
def test_router_sends_function_requests_to_code(test_model, registry, request_text):
    """Both were once planned onto the general specialist."""
    routed = route_task(request_text, registry=registry, model=test_model)
    assert routed.source == "model" and routed.tokens_out > 0, routed
    assert routed.route == "code" and routed.single


def test_data_specialist_answers_from_real_rows(test_model, registry, tmp_path):
    db = make_events_db(tmp_path / "events.duckdb")
    result = run_specialist({"id": "s1", "specialist": "data",
                             "instructions": "How many events does each model have in the events table?"},
                            registry=registry, model=test_model, options={"snapshot": str(db)})
    assert result.ok, (result.error, result.data)
    assert result.data["sql"].lstrip("( \n").upper().startswith(("SELECT", "WITH", "FROM"))
    assert result.data["rows"] and result.data["columns"]
    assert "```sql" in result.output and result.tokens_out > 0
