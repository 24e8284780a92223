"""The embedded llama.cpp model, for real (small test model): usage, cost, streaming, schema, limits."""

from __future__ import annotations

import ast
import json
import re

import pytest

import workbench
from workbench.errors import ContextTooLong

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def model(test_model):
    return workbench.get_model(test_model)


def test_complete_has_usage_and_measured_cost(model):
    c = model.complete("Write a Python function that reverses a string. Reply with code only.",
                       max_tokens=120, temperature=0, seed=1)
    assert c.usage.input_tokens > 5 and 0 < c.usage.output_tokens <= 120
    assert not c.usage.estimated
    assert c.cpu_seconds > 0 and c.cost_usd > 0 and c.cost_source == "cpu-seconds"
    code = re.search(r"```(?:python)?\n(.*?)```", c.text, re.S)
    source = code.group(1) if code else c.text
    tree = ast.parse(source)  # the answer is a code block that parses
    assert any(isinstance(n, ast.FunctionDef) for n in ast.walk(tree))


def test_stream_matches_completion(model):
    stream = model.stream("Count from 1 to 5, separated by spaces.", max_tokens=30, temperature=0)
    deltas = list(stream)
    assert len(deltas) > 1
    c = stream.completion
    assert "".join(deltas) == c.text
    assert c.usage.output_tokens > 0 and c.cost_usd > 0


def test_json_schema_constrained(model):
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 40}, "age": {"type": "integer"}},
        "required": ["name", "age"],
    }
    c = model.complete("Invent a person. Answer as JSON with name and age.", schema=schema, max_tokens=80, temperature=0)
    data = json.loads(c.text)
    assert isinstance(data["name"], str) and isinstance(data["age"], int)
    assert c.data == data


def test_stop_sequence_and_max_tokens(model):
    c = model.complete("List the numbers 1 to 20, one per line.", stop=["7"], max_tokens=100, temperature=0)
    assert "7" not in c.text
    short = model.complete("Tell me a long story about the sea.", max_tokens=5, temperature=0)
    assert short.usage.output_tokens <= 5 and short.finish_reason == "length"


def test_prompt_longer_than_context_is_a_clear_error(model):
    with pytest.raises(ContextTooLong) as err:
        model.complete("word " * 40_000, max_tokens=10)
    assert "context window" in str(err.value)


def test_reply_capped_to_remaining_context(test_model, monkeypatch):
    # A prompt that leaves little room: the reply is capped to what fits, not a crash.
    monkeypatch.setenv("WORKBENCH_N_CTX", "512")
    workbench.config.reload_settings()
    small = workbench.get_model(test_model)
    assert small.n_ctx == 512
    c = small.complete("hello " * 430 + "\nSay ok.", max_tokens=5000, cache=False)
    assert 0 < c.usage.output_tokens and c.usage.input_tokens + c.usage.output_tokens <= 512
