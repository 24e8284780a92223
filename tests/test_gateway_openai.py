"""The OpenAI-compatible endpoint, driven by the official openai SDK against uvicorn serving create_app()
(WORKBENCH_MODEL=test:echo): chat completions with and without streaming, /v1/models, errors."""

from __future__ import annotations

import json
import os
import threading
import time

import httpx
import openai
import pytest
import uvicorn
from helpers import free_port

import workbench.gateway
from workbench.config import reload_settings
from workbench.gateway import attempts, breaker, budget
from workbench.gateway.stack import compose
from workbench.testing import MemorySink

pytestmark = pytest.mark.timeout(180)
recorded = MemorySink()  # every event the code under test emits


@pytest.fixture(scope="module")
def server():
    saved = os.environ.get("WORKBENCH_MODEL")
    os.environ["WORKBENCH_MODEL"] = "test:echo"
    reload_settings()
    from workbench.server.app import create_app

    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(15)
    if saved is None:
        os.environ.pop("WORKBENCH_MODEL", None)
    else:
        os.environ["WORKBENCH_MODEL"] = saved


@pytest.fixture(autouse=True)
def full_gateway(monkeypatch):
    """The endpoint builds models with workbench.gateway.build(); until that composes the whole stack, use compose()."""
    from workbench.gateway.budget import BudgetModel
    from workbench.gateway.logged import LoggedModel
    from workbench.gateway.stack import layers
    from workbench.testing import FunctionModel, echo

    if not any(isinstance(m, BudgetModel) for m in layers(workbench.gateway.build(FunctionModel(echo)))):
        monkeypatch.setattr(workbench.gateway, "build", lambda model: LoggedModel(compose(model)))
    breaker.reset()
    recorded.clear()
    budget.BUDGETS.reset()
    with recorded:
        yield
    budget.BUDGETS.reset()


@pytest.fixture()
def client(server):
    return openai.OpenAI(base_url=f"{server}/v1", api_key="sk-client-test", max_retries=0)


def test_chat_completion(client):
    r = client.chat.completions.create(model="test:echo", messages=[{"role": "user", "content": "hello gateway"}])
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == "test:echo"
    assert r.choices[0].message.content == "hello gateway" and r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens > 0
    # An open server (no keys): the Bearer string identifies nobody, so it is neither recorded nor a budget name;
    # the caller is `anonymous` (budgets key on the name of a key the server verified: tests/test_spend_served.py).
    attempt = recorded.of("llm_attempt")[-1]
    assert attempt["key"] == "anonymous" and "sk-client-test" not in str(attempt)
    assert attempts.fingerprint("sk-client-test") not in str(attempt)


def test_chat_completion_stream_with_usage(client):
    chunks = list(client.chat.completions.create(
        model="test:echo", messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "stream me"}],
        stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "stream me"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)


def test_stream_wire_format_ends_with_done(server):
    body = {"model": "test:echo", "messages": [{"role": "user", "content": "raw"}], "stream": True}
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=30) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    chunks = [json.loads(e[6:]) for e in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "raw"}
    assert chunks[-1]["choices"][0] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
    assert "usage" not in chunks[0]  # only with stream_options.include_usage, as OpenAI does


def test_response_format_maps_to_schema(client):
    """test:echo answers a schema-constrained call with the smallest instance, strings from the prompt."""
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    r = client.chat.completions.create(model="test:echo", messages=[{"role": "user", "content": "Ada"}],
                                       response_format={"type": "json_schema",
                                                        "json_schema": {"name": "x", "schema": schema}})
    assert json.loads(r.choices[0].message.content) == {"name": "Ada"}
    r = client.chat.completions.create(model="test:echo", messages=[{"role": "user", "content": "Ada"}],
                                       response_format={"type": "json_object"})
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_models_list_and_retrieve(client):
    ids = [m.id for m in client.models.list()]
    assert "test:echo" in ids and "local:qwen2.5-coder-1.5b" in ids
    assert client.models.retrieve("test:echo").owned_by == "test"


def test_unknown_model_is_a_404_listing_models(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="nope:nothing", messages=[{"role": "user", "content": "hi"}])
    body = err.value.body
    assert err.value.status_code == 404 and body["code"] == "model_not_found" and body["param"] == "model"
    assert "test:echo" in body["message"]


@pytest.mark.parametrize("payload", [{"model": "test:echo"}, {"model": "test:echo", "messages": []},
                                     {"model": "test:echo", "messages": [{"role": "wizard", "content": "x"}]},
                                     {"model": "test:echo", "messages": [{"role": "user", "content": "x"}],
                                      "temperature": "hot"}])
def test_malformed_bodies_are_422_in_openai_shape(server, payload):
    r = httpx.post(f"{server}/v1/chat/completions", json=payload, timeout=30)
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["code"] == "invalid_body" and err["message"]
    assert httpx.post(f"{server}/v1/chat/completions", content=b"{not json", timeout=30).status_code == 422


def test_unsupported_features_are_refused_not_ignored(client):
    with pytest.raises(openai.BadRequestError, match="n=1"):
        client.chat.completions.create(model="test:echo", messages=[{"role": "user", "content": "x"}], n=2)


def test_zero_budget_is_refused_with_402(client, tmp_path, monkeypatch):
    from workbench.gateway import policy

    path = tmp_path / "policy.yaml"
    path.write_text(policy.DEFAULT_FILE.read_text().replace("  key: {default: null}", "  key: {default: 0}", 1))
    monkeypatch.setenv("WORKBENCH_GATEWAY_POLICY", str(path))
    reload_settings()
    with pytest.raises(openai.APIStatusError) as err:
        client.chat.completions.create(model="test:echo", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 402 and err.value.body["code"] == "budget_exceeded"
    assert "is $0" in err.value.body["message"]


def test_cache_header_and_gateway_health(server):
    body = {"model": "test:echo", "messages": [{"role": "user", "content": "cache me"}], "temperature": 0}
    url = f"{server}/v1/chat/completions"
    first = httpx.post(url, json=body, timeout=30)
    second = httpx.post(url, json=body, timeout=30)
    off = httpx.post(url, json=body, headers={"x-workbench-cache": "off"}, timeout=30)
    assert [r.headers["x-workbench-cached"] for r in (first, second, off)] == ["false", "true", "false"]
    health = httpx.get(f"{server}/gateway/health", timeout=30).json()
    assert health["cache"]["hits"] >= 1 and any(b["model"] == "test:echo" for b in health["breakers"])
    assert health["local_only"] is False


@pytest.fixture()
def upstream(monkeypatch, tmp_path):
    """The fault-injecting upstream behind the openai provider, and a policy failing openai:ep-* over to test:echo."""
    from fault_upstream import FaultUpstream

    from workbench.gateway import policy

    up = FaultUpstream().start()
    path = tmp_path / "policy.yaml"
    path.write_text(policy.DEFAULT_FILE.read_text().replace(
        "failover:\n", "failover:\n  openai:ep-500: [test:echo]\n  openai:ep-break: [test:echo]\n", 1)
        .replace("retry: {attempts: 3, base_s: 0.25,", "retry: {attempts: 2, base_s: 0.01,"))
    monkeypatch.setenv("WORKBENCH_GATEWAY_POLICY", str(path))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-upstream")
    monkeypatch.setenv("WORKBENCH_OPENAI_BASE_URL", up.url)
    reload_settings()
    yield up
    up.stop()


def test_endpoint_fails_over_before_the_first_token(client, upstream):
    upstream.plan("ep-500", "500", "500")
    chunks = list(client.chat.completions.create(model="openai:ep-500", messages=[{"role": "user", "content": "hi"}],
                                                 stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "hi"
    assert [(a["model"], a["outcome"]) for a in recorded.of("llm_attempt")] == [
        ("openai:ep-500", "error"), ("openai:ep-500", "error"), ("test:echo", "ok")]


def test_endpoint_stream_broken_after_tokens_ends_with_an_error_event(client, upstream):
    upstream.plan("ep-break", "break:2")
    seen = []
    with pytest.raises(openai.APIError, match="broke after"):
        for chunk in client.chat.completions.create(model="openai:ep-break", stream=True,
                                                    messages=[{"role": "user", "content": "one two three"}]):
            seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "echo: one " and upstream.count("ep-break") == 1  # not resent, not failed over
