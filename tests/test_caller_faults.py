"""A caller's bad request is the caller's: answered at once (400 under /v1), never retried, never failed over,
and never counted against the model's circuit breaker, so one bad request cannot shut a model off for
everyone. Covered: a response schema whose $ref points nowhere or that is no JSON Schema, and a schema answer
cut off at the caller's max_tokens."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from workbench.errors import ProviderError, SchemaError
from workbench.gateway import breaker
from workbench.gateway.stack import compose
from workbench.json_schemas import InvalidSchema, check_schema
from workbench.messages import Completion, Usage
from workbench.testing import FunctionModel, register_function

BAD_SCHEMAS = [
    {"type": "object", "properties": {"a": {"$ref": "#/definitions/nope"}}},
    {"$ref": "#/$defs/Missing", "$defs": {"Other": {"type": "string"}}},
    {"$ref": "https://example.com/remote.json"},
    {"type": "objct"},
    {"type": "object", "required": "a"},
]
GOOD_SCHEMAS = [
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}, "$defs": {"A": {"type": "integer"}}},
    {"type": "object", "properties": {"x": {"const": {"$ref": "data, not a reference"}}}},
    {"definitions": {"n": {"type": "number"}}, "type": "array", "items": {"$ref": "#/definitions/n"}},
]
CALLS: list[dict] = []
STRICT = {"attempts": 5, "base_s": 0.0, "cap_s": 0.0}  # 5 attempts, no sleeping
BREAKER = {"failures": 2, "cooldown_s": 30.0}


def counted(messages: list[dict], options: dict) -> dict:
    CALLS.append(options)
    return {"a": 1}


def cut_off(messages: list[dict], options: dict) -> Completion:
    CALLS.append(options)
    return Completion(text='{"a": [1, 2,', model="test:cut-off", usage=Usage(3, 5), finish_reason="length")


register_function("caller-faults-counted", counted)
register_function("caller-faults-cut-off", cut_off)


@pytest.fixture(autouse=True)
def fresh():
    breaker.reset()
    CALLS.clear()
    yield
    breaker.reset()


@pytest.mark.parametrize("schema", BAD_SCHEMAS)
def test_a_bad_schema_is_refused_before_any_attempt(schema):
    model = compose(FunctionModel(counted, name="counted"), fallbacks=[], cache=False, retry=STRICT, breaker=BREAKER)
    for _ in range(BREAKER["failures"] + 2):
        with pytest.raises(InvalidSchema, match="schema") as refused:
            model.complete("hi", schema=schema)
        assert "\n" not in str(refused.value)
        with pytest.raises(SchemaError):
            list(model.stream("hi", schema=schema))
    assert CALLS == []
    state = breaker.get("test:counted")
    assert state.consecutive == 0 and not breaker.is_open("test:counted")


@pytest.mark.parametrize("schema", GOOD_SCHEMAS)
def test_good_schemas_pass(schema):
    check_schema(schema)
    model = compose(FunctionModel(counted, name="counted"), fallbacks=[], cache=False, retry=STRICT, breaker=BREAKER)
    assert model.complete("hi", schema=schema).data == {"a": 1}


def test_an_answer_cut_off_at_max_tokens_is_not_retried_nor_counted():
    model = compose(FunctionModel(cut_off, name="cut-off"), fallbacks=[], cache=False, retry=STRICT, breaker=BREAKER)
    for _ in range(BREAKER["failures"] + 1):
        with pytest.raises(ProviderError, match="max_tokens") as err:
            model.complete("hi", schema={"type": "object"}, max_tokens=5)
        assert err.value.status == 400
    assert len(CALLS) == BREAKER["failures"] + 1  # one attempt per call
    assert breaker.get("test:cut-off").consecutive == 0 and not breaker.is_open("test:cut-off")


@pytest.fixture(scope="module")
def client():
    from workbench.server.app import create_app

    return TestClient(create_app(), base_url="http://127.0.0.1:5006")


def chat(client, model: str, **body):
    return client.post("/v1/chat/completions",
                       json={"model": model, "messages": [{"role": "user", "content": "hi"}], **body})


@pytest.mark.parametrize("schema", BAD_SCHEMAS[:3])
def test_v1_answers_an_unresolvable_ref_with_400_at_once(client, schema):
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    for _ in range(6):
        response = chat(client, "test:caller-faults-counted", response_format=fmt)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "invalid_json_schema"
        assert "$ref" in error["message"] and "\n" not in error["message"]
    assert CALLS == []
    ok = chat(client, "test:caller-faults-counted", response_format={"type": "json_object"})
    assert ok.status_code == 200, ok.text  # the model is still there for everyone
    assert all(b["state"] == "closed" for b in client.get("/gateway/health").json()["breakers"])


def test_v1_answers_a_cut_off_schema_answer_with_400(client):
    for _ in range(3):
        response = chat(client, "test:caller-faults-cut-off", max_tokens=5, response_format={"type": "json_object"},
                        )
        assert response.status_code == 400, response.text
        assert "max_tokens" in response.json()["error"]["message"]
    assert len(CALLS) == 3
    assert breaker.get("test:caller-faults-cut-off").consecutive == 0
