"""Gateway logic with deterministic models (FakeModel / FunctionModel): cache, budgets, rate limits, routing,
policy checks, retry classification, the composed order and the attempt hook."""

from __future__ import annotations

import pytest

from workbench.config import reload_settings
from workbench.errors import (
    BudgetExceeded,
    ConfigError,
    ContextTooLong,
    NeedsKeyError,
    ProviderError,
    RateLimited,
    SchemaError,
    StreamInterrupted,
)
from workbench.gateway import attempts, availability, breaker, budget, cache, policy
from workbench.gateway.breaker import BreakerModel
from workbench.gateway.budget import BudgetModel
from workbench.gateway.cache import CacheModel, ResponseCache
from workbench.gateway.fallback import FallbackModel
from workbench.gateway.priced import PricedModel
from workbench.gateway.retry import RetryModel
from workbench.gateway.stack import compose
from workbench.messages import Completion, Usage
from workbench.testing import FakeModel, FunctionModel, MemorySink, echo

recorded = MemorySink()  # every event the code under test emits


@pytest.fixture(autouse=True)
def clean():
    breaker.reset()
    recorded.clear()
    budget.BUDGETS.reset()
    with recorded:
        yield
    breaker.reset()
    budget.BUDGETS.reset()


def write_policy(tmp_path, monkeypatch, extra: str) -> None:
    text = policy.DEFAULT_FILE.read_text() + "\n" + extra
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    monkeypatch.setenv("WORKBENCH_GATEWAY_POLICY", str(path))
    reload_settings()


def priced_fake(*texts: str, cpu_seconds: float = 2.0) -> FakeModel:
    return FakeModel("priced").enqueue(*[Completion(t, "test:priced", Usage(3, 2), "stop", cpu_seconds=cpu_seconds)
                                         for t in texts])


# --- cache -------------------------------------------------------------------------------------


def test_cache_hit_miss_ttl_and_off(monkeypatch):
    store = ResponseCache(ttl_s=60)
    model = compose(priced_fake("a", "b", "c"), fallbacks=[], cache=store, budget=False)
    first = model.complete("q", temperature=0)
    hit = model.complete("q", temperature=0)
    assert (first.text, first.cached, hit.text, hit.cached) == ("a", False, "a", True)
    assert hit.cost_usd == 0.0 and hit.cost_source == "cache" and first.cost_usd == pytest.approx(2.0 * 0.0000124)
    assert model.complete("q", temperature=0, cache=False).text == "b"  # off for one call
    stats = store.stats()
    assert stats["hits"] == 1 and stats["misses"] == 1 and stats["saved_usd"] == pytest.approx(first.cost_usd)
    assert stats["hit_rate"] == 0.5
    assert [a["outcome"] for a in recorded.of("llm_attempt")] == ["ok", "cache_hit", "ok"]
    now = [1000.0]
    monkeypatch.setattr(cache.time, "monotonic", lambda: now[0])
    store.put("k", first)
    now[0] += 61  # past the TTL
    assert store.get("k") is None


def test_cache_key_covers_model_messages_and_options():
    store = ResponseCache()
    model = compose(FunctionModel(lambda m, o: f"{m[-1]['content']}|{o.get('max_tokens')}", name="fn"), fallbacks=[],
                    cache=store, budget=False)
    assert model.complete("x", max_tokens=5).text == "x|5"
    assert model.complete("x", max_tokens=6).text == "x|6"  # other options: miss
    assert model.complete([{"role": "system", "content": "s"}, {"role": "user", "content": "x"}], max_tokens=5).cached is False
    assert model.complete("x", max_tokens=5, timeout=3).cached is True  # timeout cannot change the answer


def test_sampled_calls_and_failed_streams_are_not_cached():
    store = ResponseCache()
    fake = FakeModel("s").enqueue("one", "two")
    model = compose(fake, fallbacks=[], cache=store, budget=False)
    assert model.complete("q", temperature=0.8).text == "one"
    assert model.complete("q", temperature=0.8).text == "two"  # resampling gives a new answer
    assert store.stats()["entries"] == 0


def test_stream_is_cached_once_complete():
    store = ResponseCache()
    model = compose(FunctionModel(echo, name="echo"), fallbacks=[], cache=store, budget=False)
    assert "".join(model.stream("hello there")) == "hello there"
    again = model.stream("hello there")
    assert list(again) == ["hello there"] and again.completion.cached


# --- budgets and rate limits --------------------------------------------------------------------


def test_zero_budget_refuses_everything_with_a_clear_message():
    budget.set_limit("agent", "intern", 0)
    model = compose(FunctionModel(echo, name="echo"), fallbacks=[], cache=False)
    with attempts.caller(agent="intern"), pytest.raises(BudgetExceeded) as err:
        model.complete("hi")
    assert "budget for 'intern' is $0" in str(err.value) and err.value.budget == "agent:intern"
    assert recorded.of("llm_attempt")[-1]["outcome"] == "refused"
    assert model.complete("hi").text == "hi"  # another caller is not limited


def test_budget_refuses_a_call_that_would_exceed_it_and_charges_real_cost(tmp_path, monkeypatch):
    write_policy(tmp_path, monkeypatch, "")
    fake = priced_fake("a", "b", cpu_seconds=1.0)
    fake.provider, fake.name = "local", "qwen2.5-coder-0.5b"  # estimated from the policy's CPU-seconds per token
    model = compose(fake, fallbacks=[], cache=False)
    budget.set_limit("agent", "coder", 0.001)
    with attempts.caller(agent="coder"):
        assert model.complete("hi", max_tokens=10).text == "a"  # estimate ~0.6 CPU-s, real 1 CPU-s
    spent = {(r["scope"], r["name"]): r["spent_usd"] for r in budget.report()}
    assert spent[("agent", "coder")] == pytest.approx(1.0 * 0.0000124)
    with attempts.caller(agent="coder"), pytest.raises(BudgetExceeded) as err:
        model.complete("hi", max_tokens=100_000)  # ~$0.1 estimated: over what is left
    msg = str(err.value)
    assert "agent budget 'coder'" in msg and "estimated prompt" in msg and "max_tokens" in msg


def test_budget_estimate_uses_price_table_tokenizer_or_flagged_estimate():
    pol = policy.load()
    cloud = FakeModel("x")
    cloud.provider = "openai"
    cloud.name = "gpt-4o"
    usd, detail = budget.estimate(cloud, "x" * 400, {"max_tokens": 1000}, pol)
    assert detail["estimated"] and detail["tokens_in"] == 100 + 8
    assert usd == pytest.approx((108 * 2.50 + 1000 * 10.0) / 1e6)
    counted = FunctionModel(echo, name="tok")
    counted.count_tokens = lambda text: 7  # a model with its own tokenizer
    _, detail = budget.estimate(counted, "whatever", {}, pol)
    assert not detail["estimated"] and detail["tokens_in"] == 15 and detail["tokens_out"] == 512


def test_api_key_budget_names_only_the_fingerprint():
    model = compose(FunctionModel(echo, name="echo"), fallbacks=[], cache=False)
    budget.set_limit("key", attempts.fingerprint("sk-team-a"), 0)
    with attempts.caller(api_key="sk-team-a"), pytest.raises(BudgetExceeded) as err:
        model.complete("hi")
    assert "sk-team-a" not in str(err.value)  # only the fingerprint is ever shown


def test_a_task_budget_is_not_a_gateway_scope(tmp_path):
    """A task's budget is its budget_usd, kept by the task (agents.guards.Budget), never by the gateway."""
    with pytest.raises(ValueError, match="budget scope must be one of"):
        budget.set_limit("task", "t-1", 0)
    old = tmp_path / "old.yaml"
    old.write_text(policy.DEFAULT_FILE.read_text().replace("  key: {default: null}\n",
                                                           "  key: {default: null}\n  task: {default: 0}\n", 1))
    with pytest.raises(ConfigError, match="budgets.task is not read: a task's budget is its own budget_usd"):
        policy.load(old)
    model = compose(FunctionModel(echo, name="echo"), fallbacks=[], cache=False)
    with attempts.caller(task_id="t-1"):
        assert model.complete("hi").text == "hi"


def test_rate_limit_per_key_is_a_token_bucket(tmp_path, monkeypatch):
    write_policy(tmp_path, monkeypatch, "")
    pol = policy.load()
    pol.rate_limits = {"key": {"default": {"per_minute": 60, "burst": 2}}}
    model = BudgetModel(FunctionModel(echo, name="echo"), pol)
    with attempts.caller(api_key="k1"):
        model.complete("1")
        model.complete("2")
        with pytest.raises(RateLimited) as err:
            model.complete("3")
    assert 0 < err.value.retry_after <= 1.0 and "60 calls per minute" in str(err.value)
    with attempts.caller(api_key="k2"):
        assert model.complete("4").text == "4"  # each key has its own bucket


# --- routing and policy ---------------------------------------------------------------------------


def test_availability_follows_keys(tmp_path, monkeypatch):
    write_policy(tmp_path, monkeypatch, "")
    assert availability.available("openai:gpt-4o-mini") == (False, "OPENAI_API_KEY not set")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    reload_settings()
    assert availability.available("openai:gpt-4o-mini") == (True, "")
    breaker.get("openai:gpt-4o-mini", failures=1).failure(1.0, "boom")
    assert availability.available("openai:gpt-4o-mini") == (False, "breaker open")


def test_local_only_when_offline_or_every_cloud_breaker_is_open(monkeypatch):
    assert availability.local_only() == (False, "")
    breaker.get("openai:a", failures=1).failure(1.0, "x")
    breaker.get("test:echo", failures=1)  # not a cloud deployment: does not count
    assert availability.local_only() == (True, "every cloud provider's breaker is open")
    breaker.get("groq:b", failures=1)
    assert availability.local_only()[0] is False
    monkeypatch.setenv("WORKBENCH_OFFLINE", "1")
    reload_settings()
    assert availability.local_only() == (True, "offline mode (WORKBENCH_OFFLINE=1)")


def test_policy_with_a_failover_cycle_is_refused_naming_the_cycle(tmp_path, monkeypatch):
    bad = tmp_path / "cycle.yaml"
    text = policy.DEFAULT_FILE.read_text().replace(
        "  openai:gpt-4o-mini: [mistral:codestral-latest]",
        "  openai:gpt-4o-mini: [mistral:codestral-latest]\n  mistral:codestral-latest: [openai:gpt-4o-mini]")
    bad.write_text(text)
    with pytest.raises(ConfigError) as err:
        policy.load(bad)
    cycle = str(err.value).split("has a cycle: ")[1].split(". ")[0].split(" → ")
    assert set(cycle) == {"openai:gpt-4o-mini", "mistral:codestral-latest"} and cycle[0] == cycle[-1]
    assert str(bad) in str(err.value)
    assert policy.find_cycle({"a": ["b"], "b": ["c"], "c": ["b"]}) == ["b", "c", "b"]


def test_policy_typos_are_refused(tmp_path):
    bad = tmp_path / "typo.yaml"
    bad.write_text(policy.DEFAULT_FILE.read_text() + "\nbudget: {}\n")
    with pytest.raises(ConfigError, match=r"Unknown key\(s\) \['budget'\]; use some of: local_model, models"):
        policy.load(bad)
    bad.write_text(policy.DEFAULT_FILE.read_text().replace("retry: {attempts: 3", "retry: {atempts: 3"))
    with pytest.raises(ConfigError, match=r"Unknown key\(s\) \['retry.atempts'\]"):
        policy.load(bad)
    bad.write_text(policy.DEFAULT_FILE.read_text().replace("cpu_s_per_input_token: 0.010", "cpu_s_per_input_token: -1"))
    with pytest.raises(ConfigError, match="cpu_s_per_input_token: Input should be greater than or equal to 0"):
        policy.load(bad)


def test_a_partial_policy_gets_the_packaged_settings_and_its_own_tables(tmp_path):
    """The packaged policy.yaml is the one place the settings' values are written."""
    packaged = policy.load(policy.DEFAULT_FILE)
    partial = tmp_path / "partial.yaml"
    partial.write_text("retry: {attempts: 5}\nestimates: {local_cost: {cpu_s_per_input_token: 1.0}}\n")
    pol = policy.load(partial)
    assert pol.retry == {**packaged.retry, "attempts": 5}
    assert (pol.local_model, pol.breaker, pol.cache) == (packaged.local_model, packaged.breaker, packaged.cache)
    assert pol.estimates == {"output_tokens": 512, "local_cost": {"cpu_s_per_input_token": 1.0,
                                                                  "cpu_s_per_output_token": 0.082}}
    assert (pol.models, pol.failover, pol.budgets["agent"], pol.rate_limits) == ({}, {}, {}, {})
    unlisted = FakeModel("x")
    unlisted.provider, unlisted.name = "local", "not-in-models"  # estimated at estimates.local_cost
    _, detail = budget.estimate(unlisted, "hi", {"max_tokens": 10}, pol)
    assert "~9.8 CPU-s expected" in detail["how"]  # (1 token + 8 of template) * 1.0 + 10 * 0.082


def test_policy_chain_is_transitive_and_ends_on_local():
    pol = policy.load()
    assert pol.chain("openai:gpt-4o") == ["openai:gpt-4o", "openai:gpt-4.1-mini", "groq:llama-3.3-70b-versatile",
                                          "mistral:codestral-latest", "local:qwen2.5-coder-1.5b"]
    assert pol.chain("local:qwen2.5-coder-1.5b") == ["local:qwen2.5-coder-1.5b"]


# --- retry / failover classification --------------------------------------------------------------


@pytest.mark.parametrize("exc", [SchemaError("bad schema"), NeedsKeyError("OpenAI", "OPENAI_API_KEY"),
                                 ProviderError("bad request", status=400), ProviderError("no key", status=401),
                                 ContextTooLong(5000, 4096, "local:x"), BudgetExceeded("spent")])
def test_callers_own_errors_are_not_retried_or_failed_over(exc):
    first = FakeModel("first").enqueue(exc)
    second = FakeModel("second").enqueue("never")
    model = compose([first, second], cache=False, budget=False, retry={"base_s": 0})
    with pytest.raises(type(exc)):
        model.complete("hi")
    assert len(first.requests) == 1 and second.requests == []


def test_retry_backoff_is_jittered_capped_and_honours_retry_after():
    retry = RetryModel(FakeModel(), attempts=5, base_s=1.0, cap_s=4.0, max_wait_s=10.0, rand=lambda: 1.0)
    err = ProviderError("busy", status=503)
    assert [retry.delay(err, n, 0.0) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 4.0, 4.0, None]  # capped; 5 attempts
    assert RetryModel(FakeModel(), rand=lambda: 0.5).delay(err, 1, 0.0) == 0.125  # full jitter
    assert retry.delay(ProviderError("slow down", status=429, retry_after=3.0), 1, 0.0) == pytest.approx(3.3)
    assert retry.delay(ProviderError("slow down", status=429, retry_after=3.0), 1, 8.0) is None  # past the cap
    assert retry.delay(ProviderError("pay", status=402), 1, 0.0) is None


def test_all_failing_chain_names_every_model():
    a = FakeModel("a").enqueue(ProviderError("down", status=503))
    b = FunctionModel(lambda m, o: (_ for _ in ()).throw(ProviderError("also down", status=502)), name="b")
    with pytest.raises(ProviderError) as err:
        compose([a, b], cache=False, budget=False, retry=False).complete("hi")
    assert "test:a" in str(err.value) and "test:b" in str(err.value) and err.value.status == 502



class WordStream(FakeModel):
    """Streams words one delta each and counts what it produced, also when stopped early (a local model's
    own count, not an estimate). With `fail_first`, its first stream fails before any word."""

    def __init__(self, name: str, *words: str, fail_first: bool = False):
        super().__init__(name)
        self.words, self.fail_first = words, fail_first

    def _stream(self, messages, options):
        sent: list[str] = []
        failing, self.fail_first = self.fail_first, False

        def deltas():
            if failing:
                raise ProviderError("busy", status=503)
            for word in self.words:
                sent.append(word)
                yield word

        return deltas(), lambda text: Completion(text, self.model_id, Usage(4, len(sent)), "stop")


def retried() -> RetryModel:  # the first attempt fails before any word; the second streams
    return RetryModel(WordStream("words", "one ", "two ", "three ", fail_first=True), sleep=lambda s: None)


def failed_over() -> FallbackModel:  # the first member fails before any word; the second streams
    return FallbackModel([WordStream("down", fail_first=True), WordStream("words", "one ", "two ", "three ")])


@pytest.mark.parametrize("build", [retried, failed_over])
def test_a_stream_stopped_early_keeps_the_providers_own_count(build):
    stream = build().stream("hi")
    assert next(iter(stream)) == "one "
    stream.close()  # the consumer stops reading after one word
    assert stream.completion.model == "test:words" and stream.completion.finish_reason == "stop"
    assert stream.completion.usage == Usage(4, 1)  # counted by the provider, not estimated


def test_a_relayed_stream_that_fails_after_text_ends_interrupted_with_what_was_delivered():
    class Breaks(WordStream):
        def _stream(self, messages, options):
            deltas, finish = super()._stream(messages, options)

            def broken():
                yield next(deltas)
                raise ProviderError("connection dropped", status=502)

            return broken(), finish

    stream = RetryModel(Breaks("words", "one ", "two "), sleep=lambda s: None).stream("hi")
    with pytest.raises(StreamInterrupted):
        list(stream)
    assert stream.text == "one " and stream.completion.finish_reason == "error"
    assert stream.completion.usage.estimated  # the failed attempt's count is not kept


# --- composition and the attempt hook ---------------------------------------------------------------


def test_compose_order_outermost_first():
    model = compose([FunctionModel(echo, name="one"), FunctionModel(echo, name="two")])
    layers = [type(model), type(model.wrapped), type(model.wrapped.wrapped)]
    assert layers == [BudgetModel, CacheModel, FallbackModel]
    member = model.wrapped.wrapped.models[0]
    assert [type(member), type(member.wrapped), type(member.wrapped.wrapped)] == [RetryModel, BreakerModel, PricedModel]
    single = compose(FunctionModel(echo, name="solo"))  # test: models have no policy chain
    assert type(single.wrapped.wrapped) is RetryModel


def test_attempts_are_events_with_the_caller_in_the_payload():
    with attempts.caller(agent="coder", api_key="sk-secret", task_id="t-7"):
        compose(FunctionModel(echo, name="echo"), cache=False).complete("hi")
    event = recorded.of("llm_attempt")[-1]
    assert event.payload["outcome"] == "ok" and event.agent == "coder"
    assert event.model == "test:echo" and event.duration_ms >= 0 and event.tokens_in == 1
    assert event.payload["task_id"] == "t-7" and event.task_id is None  # not a UUID: kept in the payload
    assert event.payload["key"].startswith("key-") and "sk-secret" not in str(event)


def test_attempt_events_fit_the_store_schema():
    from workbench.store import writer
    task = "3f0b3c1e-2d4b-4c55-9a7e-0e1f2a3b4c5d"
    with attempts.caller(agent="coder", task_id=task):
        event = attempts.record(model="openai:x", outcome="error", fault="server", error="ProviderError: 503",
                                status=503, duration_ms=1.5, attempt=1)
    assert event.task_id == task and event.error == "ProviderError: 503" and event.payload["status"] == 503
    writer.build_row(event)  # raises on a value the store would refuse


def test_budget_sees_the_agent_of_the_telemetry_context():
    from workbench import telemetry
    task = "9a1b3c1e-2d4b-4c55-9a7e-0e1f2a3b4c5d"
    budget.set_limit("agent", "coder", 0)
    model = compose(FunctionModel(echo, name="echo"), cache=False)
    with telemetry.task(task, agent="coder"), pytest.raises(BudgetExceeded, match="'coder'"):
        model.complete("hi")


def test_health_check_reports_open_breakers():
    from workbench import health
    from workbench.gateway.health import gateway_check

    assert gateway_check()[0] == "ok"
    breaker.get("openai:down", failures=1).failure(5.0, "ProviderError: HTTP 503")
    status, detail, fix = gateway_check()
    assert status == "fail" and "openai:down open" in detail and "HTTP 503" in detail and fix
    assert "gateway" in health.CHECKS


def test_a_fallback_member_that_cannot_take_the_call_is_passed_over():
    first = FakeModel("first").enqueue(ProviderError("down", status=503))
    small = FakeModel("small").enqueue(ContextTooLong(9000, 4096, "local:small"))
    last = FakeModel("last").enqueue("served")
    assert compose([first, small, last], cache=False, budget=False, retry=False).complete("hi").text == "served"
