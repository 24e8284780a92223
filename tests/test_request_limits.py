"""Requests that must be refused at the door, each with one 4xx line in the API's own error shape: non-finite
or negative numbers, a blank model, a prompt of only invisible characters, a boolean written as a string.

The app is the served one (`create_app`) without its lifespan: these refusals happen before a handler runs, so
no store or cluster is needed.
"""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from workbench.server.openai_schema import ChatRequest
from workbench.tasks.records import InvalidTask, NewTask

BASE = "http://127.0.0.1:5006"
RAW_NUMBERS = ["Infinity", "-Infinity", "NaN", "1e400", '"inf"', '"nan"', "-1"]
INVISIBLE = ["\u200b", "\u200b\u200c\u200d\ufeff", " \u2060\u200e ", "\u3164", "\u00ad\u034f"]


@pytest.fixture(scope="module")
def client():
    from workbench.server.app import create_app

    return TestClient(create_app(), base_url=BASE)


def post_task(client, raw: str):
    return client.post("/api/v1/tasks", content=raw, headers={"content-type": "application/json"})


def post_chat(client, raw_extra: str):
    body = '{"model": "test:echo", "messages": [{"role": "user", "content": "hi"}], %s}' % raw_extra
    return client.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})


def assert_one_line_error(response, status: int, *words: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    message = body["error"] if isinstance(body["error"], str) else body["error"]["message"]
    assert "\n" not in message and "Traceback" not in message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("number", RAW_NUMBERS)
def test_a_task_budget_must_be_a_finite_non_negative_number(client, number):
    response = post_task(client, '{"prompt": "hello", "budget_usd": %s}' % number)
    assert_one_line_error(response, 422, "budget_usd")


@pytest.mark.parametrize("field", ["priority", "budget_usd"])
def test_every_number_of_a_task_is_finite(field):
    with pytest.raises(InvalidTask, match=field):
        NewTask.of(prompt="hello", **{field: float("inf")})


@pytest.mark.parametrize("extra", ['"temperature": NaN', '"temperature": Infinity', '"temperature": -1',
                                   '"max_tokens": 1e400', '"max_tokens": -5', '"max_completion_tokens": Infinity',
                                   '"max_tokens": 100000000000000000000000', '"seed": 1e400'])
def test_v1_numbers_must_be_finite_and_in_range(client, extra):
    response = post_chat(client, extra)
    assert_one_line_error(response, 422, extra.split(":")[0].strip('"'))
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_a_blank_model_is_refused_not_replaced_by_the_default(client):
    for blank in ("", "   ", "\u200b"):
        response = post_task(client, json.dumps({"prompt": "hello", "model": blank}))
        assert_one_line_error(response, 422, "model")
        response = client.post("/v1/chat/completions", json={"model": blank, "messages": [{"role": "user",
                                                                                           "content": "hi"}]})
        assert_one_line_error(response, 422, "model")


@pytest.mark.parametrize("prompt", INVISIBLE)
def test_a_prompt_of_invisible_characters_is_empty(client, prompt):
    response = post_task(client, json.dumps({"prompt": prompt}))
    assert_one_line_error(response, 422, "invisible")
    assert NewTask(prompt="a\u200b").prompt == "a\u200b"  # visible text with a zero-width space is kept


@pytest.mark.parametrize("value", ['"yes"', '"true"', "1", '"1"', '"on"'])
def test_booleans_are_json_booleans(client, value):
    response = post_task(client, '{"prompt": "hello", "approve_plan": %s}' % value)
    assert_one_line_error(response, 422, "approve_plan")
    response = post_chat(client, '"stream": %s' % value)
    assert_one_line_error(response, 422, "stream")


def test_valid_values_still_pass():
    task = NewTask.model_validate_json('{"prompt": "hello", "budget_usd": 0.5, "approve_plan": true, "model": "x"}')
    assert task.budget_usd == 0.5 and task.approve_plan is True
    req = ChatRequest.model_validate_json('{"model": " test:echo ", "messages": [{"role": "user", "content": "h"}],'
                                          ' "temperature": 0.2, "max_tokens": 12, "seed": -1, "stream": false}')
    assert req.model == "test:echo" and req.max_tokens == 12


# --- the model of a task is checked when it is submitted ------------------------------------------------


@pytest.fixture
def tasks_client(client, isolated_home):
    """The app with a task API whose store is never reached: the model check comes before any row."""
    from workbench.config import reload_settings
    from workbench.tasks.api import TaskApi
    from workbench.tasks.service import TaskService

    reload_settings()
    client.app.state.tasks = TaskApi(TaskService(store=None))
    yield client
    del client.app.state.tasks


@pytest.mark.parametrize("model", ["openai:gpt-4o-mnii", "groq:whatever", "mistral:mistral-huge"])
def test_an_unknown_cloud_model_is_refused_at_submit(tasks_client, model):
    response = tasks_client.post("/api/v1/tasks", json={"prompt": "hello", "model": model})
    message = assert_one_line_error(response, 422, model, "WORKBENCH_PRICES_FILE")
    provider = model.partition(":")[0]
    assert f"{provider}:" in message.split("known models are", 1)[1]  # it lists the names that work


def test_a_model_priced_in_configuration_is_accepted(isolated_home, monkeypatch, tmp_path):
    from workbench.config import reload_settings
    from workbench.prices import cloud_price
    from workbench.providers.priced_names import UnpricedModel
    from workbench.tasks.service import check_model

    with pytest.raises(UnpricedModel):
        check_model(NewTask(prompt="x", model="openai:gpt-new"))
    prices = tmp_path / "prices.yaml"
    prices.write_text("openai:\n  gpt-new: {input: 1.0, output: 4.0}\n")
    monkeypatch.setenv("WORKBENCH_PRICES_FILE", str(prices))
    reload_settings()
    check_model(NewTask(prompt="x", model="openai:gpt-new"))
    check_model(NewTask(prompt="x", model="gpt-4o-mini"))  # the packaged prices are still there
    assert cloud_price("openai:gpt-new") == {"input": 1.0, "output": 4.0}


def test_a_provider_pointed_at_another_server_keeps_its_own_names(isolated_home, monkeypatch):
    from workbench.config import reload_settings
    from workbench.tasks.service import check_model

    monkeypatch.setenv("WORKBENCH_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    reload_settings()
    check_model(NewTask(prompt="x", model="openai:my-finetune"))


@pytest.mark.parametrize("text", ["openai: {m: {input: -1, output: 1}}", "openai: {m: {input: .inf, output: 1}}",
                                  "openai: {m: {input: 1}}", "[1, 2]"])
def test_a_bad_price_file_is_one_clear_error(isolated_home, monkeypatch, tmp_path, text):
    from workbench.config import reload_settings
    from workbench.errors import ConfigError
    from workbench.prices import price_table

    prices = tmp_path / "prices.yaml"
    prices.write_text(text)
    monkeypatch.setenv("WORKBENCH_PRICES_FILE", str(prices))
    reload_settings()
    with pytest.raises(ConfigError, match="prices.yaml"):
        price_table()
