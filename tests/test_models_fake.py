"""FakeModel / FunctionModel, the registry, message validation and the pricing wrapper (logic only)."""

from __future__ import annotations

import pytest

import workbench
from workbench import providers
from workbench.errors import NeedsKeyError, NetworkBlocked, SchemaError, UnknownModelError
from workbench.testing import FakeModel, FunctionModel


def test_fake_model_replays_and_records():
    fake = FakeModel().enqueue("first", {"a": 1})
    assert fake.complete("hi").text == "first"
    c = fake.complete([{"role": "user", "content": "json please"}], schema={"type": "object"})
    assert c.data == {"a": 1}
    assert fake.requests[0][0] == [{"role": "user", "content": "hi"}]
    assert fake.requests[1][1]["schema"] == {"type": "object"}
    with pytest.raises(workbench.WorkbenchError, match="enqueue"):
        fake.complete("nothing queued")


def test_function_model_streams_and_counts():
    model = FunctionModel(lambda messages, options: messages[-1]["content"][::-1])
    stream = model.stream("abc")
    assert "".join(stream) == "cba"
    assert stream.completion.usage.output_tokens >= 1


def test_unknown_option_refused():
    with pytest.raises(SchemaError, match="Unknown option"):
        FakeModel().enqueue("x").complete("hi", temprature=0.1)


@pytest.mark.parametrize("bad", ["", "   ", [], [{"role": "wizard", "content": "x"}], [{"role": "user"}]])
def test_bad_messages(bad):
    with pytest.raises(SchemaError):
        FakeModel().enqueue("x").complete(bad)


def test_unknown_model_lists_available():
    with pytest.raises(UnknownModelError) as err:
        providers.get_model("local:gpt-17")
    assert "local:qwen2.5-coder-1.5b" in str(err.value)
    with pytest.raises(UnknownModelError):
        providers.get_model("nosuchprovider:x")


def test_missing_key_names_variable_and_suggests_local():
    model = workbench.get_model("openai:gpt-4o-mini")
    with pytest.raises(NeedsKeyError) as err:
        model.complete("hi")
    assert "OPENAI_API_KEY" in str(err.value) and "local:" in str(err.value)


def test_remote_calls_blocked_in_tests(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    workbench.config.reload_settings()
    with pytest.raises(NetworkBlocked):  # the provider refuses; the gateway would fail over to local
        providers.get_model("openai:gpt-4o-mini").complete("hi")


def test_gateway_prices_every_call():
    c = workbench.get_model("test:echo").complete("hello there")
    assert c.text == "hello there"
    assert c.cost_usd == 0.0 and c.cost_source == "cpu-seconds"


def test_price_table_for_cloud_usage():
    from workbench.messages import Completion, Usage
    from workbench.prices import price

    cost, source = price(Completion("x", "openai:gpt-4o-mini", Usage(1_000_000, 1_000_000)))
    assert source == "price-table" and cost == pytest.approx(0.75)
    assert price(Completion("x", "openai:some-new-model", Usage(10, 10)))[1] == "unpriced"
