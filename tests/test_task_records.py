"""The one task request (`NewTask`): checked once, when it is made, with the same messages for every caller."""

from __future__ import annotations

import pytest
from helpers import run_cli

from workbench.tasks.records import InvalidTask, NewTask, PromptTooLarge, Task


@pytest.mark.parametrize("fields, error, fragment", [
    ({"prompt": "  "}, InvalidTask, "The prompt is empty"),
    ({"prompt": "x" * 1_000_001}, PromptTooLarge, "the limit is 1,000,000"),
    ({"prompt": "nul \x00"}, InvalidTask, "NUL bytes"),
    ({"prompt": "lone \ud800"}, InvalidTask, "prompt is not valid UTF-8"),
    ({"prompt": "ok", "title": "lone \ud800"}, InvalidTask, "title: Input should be a valid string"),
    ({"prompt": "ok", "approve_plan": True, "mode": "single"}, InvalidTask, "approve_plan needs mode 'agents'"),
    ({"prompt": "ok", "budget_usd": -1}, InvalidTask, "Invalid task — budget_usd: Input should be greater than"),
    ({"prompt": "ok", "priority": 1001}, InvalidTask, "Invalid task — priority: Input should be less than"),
    ({"prompt": "ok", "mode": "swarm"}, InvalidTask, "Invalid task — mode: Input should be 'agents' or 'single'"),
    ({"prompt": "ok", "title": "t" * 501}, InvalidTask, "title: String should have at most 500 characters"),
])
def test_a_bad_request_is_refused_when_made_with_one_line(fields, error, fragment):
    with pytest.raises(error) as caught:
        NewTask.of(**fields)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)


def test_a_good_request_keeps_its_fields_and_defaults():
    new = NewTask.of(prompt="Write a haiku", priority=3, budget_usd=0.5)
    assert (new.prompt, new.title, new.priority, new.budget_usd, new.mode, new.approve_plan, new.model) == (
        "Write a haiku", "", 3, 0.5, "agents", False, None)


def test_a_task_result_is_typed():
    task = Task.model_validate({"id": "t", "title": "x", "prompt": "x", "status": "queued", "priority": 0,
                                "created_at": "2024-01-01T00:00:00+00:00", "updated_at": "2024-01-01T00:00:00+00:00"})
    assert task.status == "queued" and task.plan_state == "none"
    with pytest.raises(ValueError):
        Task.model_validate({**task.model_dump(), "status": "sleeping"})


def test_the_cli_refuses_a_bad_request_in_one_line_before_touching_the_store():
    out = run_cli("submit", "a task", "--priority", "5000")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "priority: Input should be less than or equal to 1000" in out.stderr
