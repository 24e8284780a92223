"""Strategy statistics: the Beta estimate of known tables of outcomes, the exploration rate under a seeded
RNG, the choice rules, and the one decision point that reads them (the Code specialist's loop rounds) on the
real store and sandbox with a scripted model: it reads the stored outcomes and logs its choice as an event."""

from __future__ import annotations

import random
import uuid

import pytest
from helpers import requires, run_cli, sandbox_ok, scripted_coder, seed_general_outcomes
from psycopg.types.json import Jsonb

from workbench import telemetry
from workbench.memory import strategy
from workbench.memory.strategy import Arm, Outcome, decide, estimate

TESTS = ("```python\n# test_fib.py\nfrom fib import fib\n\n\ndef test_base_cases():\n    assert (fib(0), fib(1)) == (0, 1)\n"
         "\n\ndef test_fib_of_ten():\n    assert fib(10) == 55\n```")
WRONG = "```python\n# fib.py\ndef fib(n):\n    return n\n```"
TASK = "Write fib.py with fib(n), the n-th Fibonacci number (0, 1, 1, 2, 3, ...). Tests go in test_fib.py."


def _outcomes(kind: str, settings: str, passed: int, failed: int, cost: float = 0.001, model: str = "m") -> list[Outcome]:
    return ([Outcome(kind, kind.split(":")[0], model, settings, True, cost, 100) for _ in range(passed)]
            + [Outcome(kind, kind.split(":")[0], model, settings, False, cost * 2, 300) for _ in range(failed)])


def _arm(value: int, passed: int, failed: int, cost: float) -> Arm:
    return Arm("code:python", "code", "m", f"max_rounds={value}", passed, failed, cost, cost * 1e5)


# --- the estimator -------------------------------------------------------------------------------


def test_a_known_table_gives_the_beta_posterior_means():
    arms = {a.settings: a for a in estimate(_outcomes("code:python", "max_rounds=3", 9, 1)
                                            + _outcomes("code:python", "max_rounds=1", 2, 6)
                                            + _outcomes("general", "default", 0, 0))}
    three, one = arms["max_rounds=3"], arms["max_rounds=1"]
    assert (three.successes, three.failures, three.trials) == (9, 1, 10)
    assert three.mean == pytest.approx(10 / 12)  # Beta(1 + 9, 1 + 1)
    assert one.mean == pytest.approx(3 / 10)  # Beta(1 + 2, 1 + 6)
    low, high = three.interval
    assert 0.55 < low < 10 / 12 < high < 0.99
    assert three.cost_usd == pytest.approx((9 * 0.001 + 0.002) / 10) and three.tokens == pytest.approx(120)
    assert Arm("k", "s", None, "x").mean == 0.5  # no outcome: the prior's mean
    # best first within a kind
    assert [a.settings for a in estimate(_outcomes("code:python", "max_rounds=1", 2, 6)
                                         + _outcomes("code:python", "max_rounds=3", 9, 1))] == ["max_rounds=3",
                                                                                                "max_rounds=1"]


def test_exploration_rate_is_honoured_with_a_seeded_rng():
    arms = {1: _arm(1, 1, 9, 0.001), 3: _arm(3, 9, 1, 0.003)}

    def run(explore: float, seed: int) -> list[tuple[int, bool]]:
        rng = random.Random(seed)
        return [decide(arms, (1, 2, 3), 3, rng, explore)[:2] for _ in range(4000)]

    picks = run(0.1, 7)
    explored = sum(e for _, e in picks) / len(picks)
    assert 0.085 <= explored <= 0.115, explored
    assert {v for v, e in picks if not e} == {3}  # exploiting: always the best arm
    assert {v for v, e in picks if e} == {1, 2, 3}  # exploring: any candidate
    assert run(0.1, 7) == picks  # the same seed, the same choices
    assert all(not e for _, e in run(0.0, 7))
    with pytest.raises(ValueError, match="0 to 0.1"):
        decide(arms, (1, 2, 3), 3, random.Random(0), 0.2)


def test_the_choice_keeps_the_default_without_a_record_and_takes_the_cheapest_as_good_arm():
    rng = random.Random(0)
    assert decide({1: _arm(1, 2, 0, 0.001)}, (1, 2, 3), 3, rng, 0.0)[0] == 3  # 2 outcomes are too few
    value, explored, why = decide({1: _arm(1, 9, 1, 0.001), 3: _arm(3, 9, 1, 0.003)}, (1, 2, 3), 3, rng, 0.0)
    assert (value, explored) == (1, False) and "cheapest" in why
    assert decide({1: _arm(1, 3, 7, 0.001), 3: _arm(3, 9, 1, 0.003)}, (1, 2, 3), 3, rng, 0.0)[0] == 3
    # the default has no record: a better-recorded arm replaces it; a worse one does not
    assert decide({2: _arm(2, 9, 1, 0.002)}, (1, 2, 3), 3, rng, 0.0)[0] == 2
    assert decide({2: _arm(2, 0, 5, 0.002)}, (1, 2, 3), 3, rng, 0.0)[0] == 3


# --- on the store: the stored outcomes and the decision point ------------------------------------


def _seed(store, model: str, rows: list[tuple[int | None, str, float]], language: str = "python") -> None:
    """Finished code subtasks: (max_rounds or None, status, cost_usd) each, in tasks of their own."""
    with store.connection() as conn:
        for rounds, status, cost in rows:
            task_id = conn.execute("INSERT INTO tasks (prompt, kind, language) VALUES ('x', 'code', %s) RETURNING id",
                                   (language,)).fetchone()[0]
            data = {"language": language, **({"max_rounds": rounds} if rounds is not None else {})}
            result = {"subtask_id": "s1", "specialist": "code", "ok": status == "done", "status": status,
                      "data": data, "model": model, "tokens_in": 100, "tokens_out": 50, "cost_usd": cost,
                      "duration_ms": 1000.0}
            conn.execute("INSERT INTO task_subtasks (task_id, plan_version, subtask_id, specialist, status, result) "
                         "VALUES (%s, 1, 's1', 'code', %s, %s)", (task_id, status, Jsonb(result)))


@pytest.fixture
def store(monkeypatch):
    from workbench.config import reload_settings
    from workbench.store import close_store, open_store

    monkeypatch.setenv("WORKBENCH_STRATEGY", "true")
    monkeypatch.setenv("WORKBENCH_STRATEGY_EXPLORE", "0")
    reload_settings()
    s = open_store()
    yield s
    close_store()


def test_the_table_reads_the_stored_outcomes_and_the_cli_prints_it(store):
    _seed(store, "fake:a", [(3, "done", 0.003)] * 9 + [(3, "failed", 0.006), (None, "done", 0.001)])
    with store.connection() as conn:  # a cache answer ran no loop: not counted
        task_id = conn.execute("INSERT INTO tasks (prompt) VALUES ('y') RETURNING id").fetchone()[0]
        conn.execute("INSERT INTO task_subtasks (task_id, plan_version, subtask_id, specialist, status, result) "
                     "VALUES (%s, 1, 's1', 'code', 'done', %s)",
                     (task_id, Jsonb({"data": {"from_memory": True, "max_rounds": 3}, "stop_reason": "memory_cache"})))
    arms = {a.settings: a for a in strategy.table(store)}
    assert set(arms) == {"max_rounds=3", "unrecorded"}
    assert (arms["max_rounds=3"].successes, arms["max_rounds=3"].trials, arms["max_rounds=3"].kind) == (9, 10,
                                                                                                       "code:python")
    env = {"WORKBENCH_HOME": str(store.home)}
    printed = run_cli("memory", "strategies", "--json", env=env)
    assert printed.returncode == 0, printed.stderr
    import json

    rows = {r["settings"]: r for r in json.loads(printed.stdout)}
    assert rows["max_rounds=3"]["successes"] == 9 and rows["max_rounds=3"]["mean"] == pytest.approx(10 / 12, abs=1e-4)
    text = run_cli("memory", "strategies", env={**env, "COLUMNS": "200"})
    assert "code:python" in text.stdout and "9/10" in text.stdout


@requires(*sandbox_ok())
@pytest.mark.timeout(300)
def test_the_code_loop_rounds_come_from_the_statistics_and_the_choice_is_an_event(store):
    from workbench.agents.specialist import SpecialistCall, Subtask
    from workbench.code.specialist import handle

    model = scripted_coder(WRONG, tests=TESTS)  # never passes: the loop uses every round it is given
    # one round did as well as three for this kind and model, at a third of the cost
    _seed(store, model.model_id, [(1, "done", 0.001)] * 9 + [(1, "failed", 0.001)]
          + [(3, "done", 0.003)] * 9 + [(3, "failed", 0.003)])
    _seed(store, "other:model", [(2, "done", 0.0001)] * 20)  # another model's record is not this model's
    task_id = str(uuid.uuid4())
    call = SpecialistCall(subtask=Subtask("s1", "code", TASK), context={}, agent=None, model=model, budget=None,
                          task_id=task_id, options={"max_rounds": 3})
    with telemetry.task(task_id, agent="code"):
        result = handle(call)
    assert result.data["max_rounds"] == 1 and result.data["rounds"] == 1, result.data
    store.flush()
    [event] = [e for e in store.events(kinds=["memory"]) if e["payload"]["action"] == "strategy"]
    p = event["payload"]
    assert str(event["task_id"]) == task_id and p["chose"] == 1 and p["default"] == 3 and not p["explored"]
    assert p["why"].startswith("chose the loop with 1 round: 9/10 past successes for this kind (code:python")
    assert {a["settings"] for a in p["arms"]} == {"max_rounds=1", "max_rounds=3"}
    from workbench import traces

    assert traces._memory_label(p) == "strategy max_rounds=1"
    # the strategy off: the configured rounds, and no choice logged
    call.options["strategy"] = False
    assert handle(call).data["rounds"] == 3


def test_the_model_for_a_specialist_is_the_cheapest_as_good_as_the_best(store):
    import random

    def choose(candidates):
        return strategy.choose_model(store, specialist="general", default="fake:big", candidates=candidates,
                                     rng=random.Random(1), explore=0.0)

    first = choose(["fake:small"])  # no record yet: the default
    assert first.value == "fake:big" and "configured default" in first.why
    seed_general_outcomes(store, "fake:big", 20, 0, 0.01)
    seed_general_outcomes(store, "fake:small", 19, 1, 0.001)  # as good within the tolerance, a tenth of the cost
    seed_general_outcomes(store, "fake:bad", 2, 8, 0.0001)  # cheapest of all, and it fails
    chosen = choose(["fake:small", "fake:bad"])
    assert chosen.value == "fake:small", chosen.why
    assert chosen.why.startswith("chose the model fake:small: 19/20 past successes for general subtasks")
    assert chosen.payload()["setting"] == "model" and {a["settings"] for a in chosen.arms} == {
        "model=fake:big", "model=fake:small", "model=fake:bad"}
    assert choose(["fake:bad"]).value == "fake:big"  # a cheap model that fails is never the choice
    store.flush()
    events = [e["payload"] for e in store.events(kinds=["memory"]) if e["payload"].get("setting") == "model"]
    assert [e["chose"] for e in events] == ["fake:big", "fake:small", "fake:big"]
