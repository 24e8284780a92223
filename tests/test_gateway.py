"""Gateway fault injection: the real openai provider (official SDK) against a fault-injecting OpenAI-compatible
upstream on 127.0.0.1; asserts retry, failover, breaker and stream behaviour, and the attempts recorded for each."""

from __future__ import annotations

import time

import pytest
from fault_upstream import FaultUpstream

from workbench.config import reload_settings
from workbench.errors import BreakerOpen, NeedsKeyError, ProviderError, StreamInterrupted
from workbench.gateway import breaker
from workbench.gateway.stack import compose
from workbench.testing import MemorySink

recorded = MemorySink()  # every event the code under test emits

pytestmark = pytest.mark.timeout(120)
FAST_RETRY = {"base_s": 0.01, "cap_s": 0.05, "max_wait_s": 2.0}


@pytest.fixture(scope="module")
def upstream():
    up = FaultUpstream(hang_s=5).start()
    yield up
    up.stop()


@pytest.fixture(autouse=True)
def gateway_env(upstream, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fault-test")
    monkeypatch.setenv("WORKBENCH_OPENAI_BASE_URL", upstream.url)
    monkeypatch.setenv("WORKBENCH_REQUEST_TIMEOUT_S", "5")
    reload_settings()
    breaker.reset()
    recorded.clear()
    with recorded:
        yield
    breaker.reset()


def gateway(name: str, fallbacks=("test:echo",), **kw):
    kw.setdefault("retry", FAST_RETRY)
    return compose(f"openai:{name}", fallbacks=list(fallbacks), cache=False, budget=False, **kw)


def outcomes() -> list[tuple]:
    return [(a["model"], a["outcome"], a.get("fault"), a.get("status")) for a in recorded.of("llm_attempt")]


def test_429_honours_retry_after_then_succeeds(upstream):
    upstream.plan("r429", "429:0.3", "ok")
    start = time.perf_counter()
    c = gateway("r429").complete("hello")
    assert time.perf_counter() - start >= 0.3  # waited as long as the upstream asked
    assert c.text == "echo: hello" and c.model == "openai:r429"
    assert outcomes() == [("openai:r429", "error", "rate_limit", 429), ("openai:r429", "ok", None, None)]
    assert [a["attempt"] for a in recorded.of("llm_attempt")] == [1, 2]
    assert len({a["call_id"] for a in recorded.of("llm_attempt")}) == 1  # one logical call
    assert upstream.count("r429") == 2


def test_long_retry_after_fails_over_instead_of_waiting(upstream):
    upstream.plan("long429", "429:60")
    start = time.perf_counter()
    c = gateway("long429").complete("hello")
    assert time.perf_counter() - start < 2 and c.model == "test:echo"
    rec = recorded.of("llm_attempt")
    assert outcomes() == [("openai:long429", "error", "rate_limit", 429), ("test:echo", "ok", None, None)]
    assert rec[1]["position"] == 1 and rec[1]["failover_from"] == "openai:long429"


def test_402_fails_over_without_retry(upstream):
    upstream.plan("pay", "402", "402")
    c = gateway("pay").complete("hello")
    assert c.model == "test:echo" and upstream.count("pay") == 1
    assert outcomes() == [("openai:pay", "error", "payment", 402), ("test:echo", "ok", None, None)]


def test_500s_are_retried_with_backoff(upstream):
    upstream.plan("flaky", "500", "503", "ok")
    c = gateway("flaky").complete("hello")
    assert c.model == "openai:flaky" and upstream.count("flaky") == 3
    assert [o[2] for o in outcomes()] == ["server", "server", None]


def test_hang_times_out_and_fails_over(upstream, monkeypatch):
    monkeypatch.setenv("WORKBENCH_REQUEST_TIMEOUT_S", "0.4")
    reload_settings()
    upstream.plan("slow", "hang", "hang")
    c = gateway("slow", retry={**FAST_RETRY, "attempts": 2}).complete("hello")
    assert c.model == "test:echo"
    assert outcomes()[:2] == [("openai:slow", "error", "timeout", None)] * 2
    assert all(a["duration_ms"] >= 350 for a in recorded.of("llm_attempt")[:2])


def test_dropped_connection_fails_over(upstream):
    upstream.plan("drop", "drop", "drop", "drop")
    c = gateway("drop").complete("hello")
    assert c.model == "test:echo" and upstream.count("drop") == 3
    assert [o[2] for o in outcomes()] == ["connection"] * 3 + [None]


@pytest.mark.parametrize("fault", ["malformed", "no_choices"])
def test_malformed_answer_is_retried(upstream, fault):
    model = f"bad-{fault}"
    upstream.plan(model, fault, "ok")
    c = gateway(model).complete("hello")
    assert c.model == f"openai:{model}" and c.text == "echo: hello"
    assert [o[1:3] for o in outcomes()] == [("error", "malformed"), ("ok", None)]


def test_callers_own_error_is_neither_retried_nor_failed_over(upstream):
    upstream.plan("b400", "400")
    with pytest.raises(ProviderError) as err:
        gateway("b400").complete("hello")
    assert err.value.status == 400 and upstream.count("b400") == 1
    assert outcomes() == [("openai:b400", "error", "caller", 400)]
    assert breaker.get("openai:b400").consecutive == 0  # a caller's error says nothing about the deployment


def test_missing_key_of_first_model_is_reported_not_hidden(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    reload_settings()
    with pytest.raises(NeedsKeyError):
        gateway("nokey").complete("hello")


def test_stream_failing_before_first_token_fails_over(upstream):
    upstream.plan("s500", "500", "malformed")
    stream = gateway("s500", retry={**FAST_RETRY, "attempts": 2}).stream("one two three")
    text = "".join(stream)
    assert text == "one two three" and stream.completion.model == "test:echo"
    assert [o[:3] for o in outcomes()] == [("openai:s500", "error", "server"), ("openai:s500", "error", "malformed"),
                                           ("test:echo", "ok", None)]


def test_stream_broken_after_first_token_ends_with_stream_interrupted(upstream):
    upstream.plan("sbreak", "break:2")
    stream = gateway("sbreak").stream("one two three four")
    seen = []
    with pytest.raises(StreamInterrupted) as err:
        for delta in stream:
            seen.append(delta)
    assert seen == ["echo: ", "one "] and err.value.partial == "echo: one "
    assert upstream.count("sbreak") == 1  # neither retried nor failed over: nothing is shown twice
    assert outcomes() == [("openai:sbreak", "error", "connection", None)]
    assert stream.completion.finish_reason == "error" and stream.completion.text == "echo: one "


def test_stream_ok_through_the_real_provider(upstream):
    stream = gateway("sok").stream("alpha beta")
    assert list(stream) == ["echo: ", "alpha ", "beta "]
    assert stream.completion.model == "openai:sok" and outcomes() == [("openai:sok", "ok", None, None)]


def test_breaker_opens_fails_fast_and_recovers_after_a_half_open_probe(upstream):
    model = gateway("brk", fallbacks=(), retry=False, breaker={"failures": 2, "cooldown_s": 0.3})
    upstream.plan("brk", "500", "500")
    for _ in range(2):
        with pytest.raises(ProviderError):
            model.complete("hello")
    with pytest.raises(BreakerOpen) as err:
        model.complete("hello")
    assert "2 consecutive failures" in str(err.value) and upstream.count("brk") == 2  # failed fast, no request
    snap = next(s for s in breaker.snapshot() if s["model"] == "openai:brk")
    assert snap["state"] == "open" and snap["success_rate"] == 0.0 and snap["rejected"] == 1
    time.sleep(0.35)
    upstream.plan("brk", "500")  # the half-open probe fails: open again
    with pytest.raises(ProviderError):
        model.complete("hello")
    assert breaker.state_of("openai:brk") == "open"
    time.sleep(0.35)
    assert model.complete("hello").text == "echo: hello"  # the probe succeeds: closed
    snap = next(s for s in breaker.snapshot() if s["model"] == "openai:brk")
    assert snap["state"] == "closed" and snap["ok"] == 1 and snap["p50_ms"] > 0
    assert [o[1] for o in outcomes()] == ["error", "error", "breaker_open", "error", "ok"]


def test_open_breaker_fails_over_along_the_chain(upstream):
    model = gateway("brk2", retry=False, breaker={"failures": 1, "cooldown_s": 30})
    upstream.plan("brk2", "503")
    assert model.complete("a").model == "test:echo"
    assert model.complete("b").model == "test:echo" and upstream.count("brk2") == 1
    assert [o[1] for o in outcomes()] == ["error", "ok", "breaker_open", "ok"]


def test_cloud_unreachable_completes_on_the_local_model(test_model, monkeypatch):
    """The policy chain of a cloud model ends on the local model (here the small test model)."""
    from helpers import free_port

    monkeypatch.setenv("WORKBENCH_OPENAI_BASE_URL", f"http://127.0.0.1:{free_port()}/v1")  # nothing listens
    monkeypatch.setenv("WORKBENCH_MODEL", test_model)
    reload_settings()
    model = compose("openai:gpt-4o-mini", retry=FAST_RETRY, cache=False)
    c = model.complete("Reply with the single word: ok", max_tokens=4, temperature=0)
    assert c.model == test_model and c.cost_source == "cpu-seconds" and c.cost_usd > 0
    rec = recorded.of("llm_attempt")
    assert [a["fault"] for a in rec if a["model"] == "openai:gpt-4o-mini"] == ["connection"] * 3
    assert ("mistral:codestral-latest", "skipped") in [(a["model"], a["outcome"]) for a in rec]
    assert rec[-1]["model"] == test_model and rec[-1]["outcome"] == "ok" and rec[-1]["failover_from"]


def test_offline_mode_keeps_cloud_calls_on_the_local_model(test_model, monkeypatch):
    monkeypatch.setenv("WORKBENCH_OFFLINE", "1")
    monkeypatch.setenv("WORKBENCH_MODEL", test_model)
    reload_settings()
    from workbench.gateway import availability

    assert availability.local_only() == (True, "offline mode (WORKBENCH_OFFLINE=1)")
    c = compose("openai:gpt-4o-mini", cache=False).complete("Say hi", max_tokens=4, temperature=0)
    assert c.model == test_model
    skipped = [a for a in recorded.of("llm_attempt") if a["outcome"] == "skipped"]
    assert skipped[0]["model"] == "openai:gpt-4o-mini" and "offline" in skipped[0]["reason"]
    assert not any(a["outcome"] == "error" for a in recorded.of("llm_attempt"))  # the cloud was never called
