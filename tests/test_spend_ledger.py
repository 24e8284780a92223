"""Spend and rate limits shared across processes, on the real embedded Postgres (workbench.store.spend via the
gateway's BudgetModel): two OS processes racing for one budget never pass it; a key's budget is kept by name
across restarts; the daily cloud budget resets on the next UTC day; unpriced cloud models and an unreachable
ledger refuse cloud calls while local ones run.

The "cloud" model here is a FunctionModel named openai:gpt-4o-mini: priced by the packaged price table, never
sending anything anywhere; each call costs exactly what the gateway reserved for it, so settled spend can be
compared with the limit to the cent."""

from __future__ import annotations

import json
import shutil
import time
from datetime import datetime, timedelta, timezone

import pytest
from test_store import _pg_tmp, pg_home, run_py, spawn_py  # noqa: F401  (pg_home: the module fixture, shared)

from workbench import telemetry
from workbench.config import reload_settings
from workbench.errors import BudgetExceeded, RateLimited, UnpricedCloudModel
from workbench.gateway import attempts, budget, shared_spend
from workbench.store import api_keys, open_store, spend
from workbench.store import postgres as embedded

pytestmark = pytest.mark.timeout(300)
MAX_TOKENS = 1000

# Shared by this module and its child processes: a priced cloud model whose calls cost their estimate.
CLOUD = """
from workbench.gateway import budget, policy
from workbench.gateway.budget import BudgetModel
from workbench.messages import Completion, Usage
from workbench.testing import FunctionModel

CALLS = []

def cloud_model(name="gpt-4o-mini", provider="openai"):
    pol = policy.load()
    holder = {}

    def answer(messages, options):
        CALLS.append(1)
        usd, _ = budget.estimate(holder["m"], messages, options, pol, None)
        return Completion("ok", holder["m"].model_id, Usage(9, options.get("max_tokens", 1)), "stop", cost_usd=usd)

    m = FunctionModel(answer, name=name)
    m.provider = provider
    holder["m"] = m
    return BudgetModel(m, pol), usd_of(m, pol)

def usd_of(m, pol):
    return budget.estimate(m, "hi", {"max_tokens": 1000}, pol, None)[0]
"""
namespace: dict = {}
exec(CLOUD, namespace)  # noqa: S102 - the same definitions the children run
cloud_model = namespace["cloud_model"]




@pytest.fixture
def store(pg_home, monkeypatch):  # noqa: F811
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("WORKBENCH_OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")  # a cloud model counts only when it could be called:
    monkeypatch.setenv("WORKBENCH_ALLOW_NETWORK", "1")  # key set, network allowed (the fake never connects)
    reload_settings()
    budget.BUDGETS.reset()
    s = open_store(pg_home, url="")
    yield s
    budget.BUDGETS.reset()


def keyed(store, name: str, usd_per_day: float | None = None, per_minute: int | None = None) -> str:
    secret = api_keys.create(store, name, "submit")
    with store.connection() as conn:
        assert spend.set_key_limits(conn, name, usd_per_day, per_minute)
    return secret


def ledger(store, scope: str, name: str) -> dict:
    with store.connection() as conn:
        row = conn.execute("SELECT settled_usd, reserved_usd, calls FROM spend_ledger WHERE scope = %s AND name = %s",
                           (scope, name)).fetchone()
    return {"settled": row[0], "reserved": row[1], "calls": row[2]} if row else {}


RACER = CLOUD + """
import json, os, threading, time
from workbench.errors import BudgetExceeded
from workbench.gateway import attempts
from workbench.store import open_store

open_store()
start, rounds, tries, threads = (float(x) for x in os.environ["RACE"].split())
rounds, tries, threads = int(rounds), int(tries), int(threads)
model, _ = cloud_model(name="qwen2.5-coder-0.5b", provider="local")  # priced in CPU-seconds, never run
lock = threading.Lock()
def spend_counted(r, box):
    n = 0
    for _ in range(tries):
        try:
            with attempts.caller(key_name=f"race{r}"):
                model.complete("hi", max_tokens=1000)
            n += 1
        except BudgetExceeded:
            pass
    with lock:
        box[r] += n

counted = [0] * rounds
for r in range(rounds):
    time.sleep(max(0.0, start + r * 0.4 - time.time()))  # both processes start each round together
    workers = [threading.Thread(target=spend_counted, args=(r, counted)) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
print(json.dumps(counted), flush=True)
"""


def test_two_processes_racing_for_one_budget_never_pass_it(store, pg_home):  # noqa: F811
    """A key's budget on a local model: the key's row is the only one both processes update (a cloud call also
    takes the daily cloud row, which would order the two processes by itself). Each process races with 4
    threads, so most rounds have several reservations in flight at the moment the budget runs out."""
    _, usd = cloud_model(name="qwen2.5-coder-0.5b", provider="local")
    assert usd > 0
    rounds, fits, tries, threads = 16, 5, 3, 4  # each round: a fresh key whose budget fits 5 calls; 2 x 4 x 3 try
    limit = usd * fits + usd / 2
    for r in range(rounds):
        keyed(store, f"race{r}", usd_per_day=limit)
    start = time.time() + 12  # after both children have imported workbench and opened the store
    procs = [spawn_py(RACER, pg_home, {"RACE": f"{start} {rounds} {tries} {threads}"}) for _ in range(2)]
    won = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
        won.append(json.loads(out.strip().splitlines()[-1]))
    for r in range(rounds):
        row = ledger(store, "key", f"race{r}")
        calls = won[0][r] + won[1][r]
        assert calls == fits, f"round {r}: {won[0][r]} + {won[1][r]} calls passed a budget that fits {fits}"
        assert row["calls"] == fits and row["settled"] <= limit + 1e-12 and row["reserved"] == pytest.approx(0)
        assert row["settled"] == pytest.approx(usd * fits)


CRASHER = """
import time
from workbench.gateway import attempts, policy
from workbench.gateway.budget import BudgetModel
from workbench.store import open_store, spend
from workbench.testing import FunctionModel

spend.HOLD_LEASE_S = 3.0
open_store()
model = FunctionModel(lambda messages, options: time.sleep(600), name="qwen2.5-coder-0.5b")
model.provider = "local"
with attempts.caller(key_name="crashed"):
    BudgetModel(model, policy.load()).complete("hi", max_tokens=1000)  # reserves, then hangs in the call
"""


def test_a_reservation_held_by_a_killed_process_is_released_when_its_lease_ends(store, pg_home):  # noqa: F811
    import os
    import signal

    model, usd = cloud_model(name="qwen2.5-coder-0.5b", provider="local")
    keyed(store, "crashed", usd_per_day=usd * 1.5)  # room for one call
    child = spawn_py(CRASHER, pg_home)
    try:
        deadline = time.monotonic() + 60
        while not ledger(store, "key", "crashed").get("reserved"):
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()[1][-3000:]
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)  # no settle, no cleanup
        child.wait(30)
    finally:
        child.kill()
    with attempts.caller(key_name="crashed"), pytest.raises(BudgetExceeded):
        model.complete("hi", max_tokens=MAX_TOKENS)  # the dead process's reservation still counts
    time.sleep(3.2)  # its lease is over: the next call that would be refused releases it first
    with attempts.caller(key_name="crashed"):
        assert model.complete("hi", max_tokens=MAX_TOKENS).text == "ok"
    row = ledger(store, "key", "crashed")
    assert row["calls"] == 1 and row["reserved"] == pytest.approx(0) and row["settled"] == pytest.approx(usd)
    with store.connection() as conn:
        assert conn.execute("SELECT count(*) FROM spend_holds WHERE claims::text LIKE '%crashed%'").fetchone()[0] == 0


def test_a_key_budget_is_kept_by_name_across_restarts_and_rotation(store, pg_home):  # noqa: F811
    _, usd = cloud_model()
    keyed(store, "team", usd_per_day=usd * 2.5)
    code = CLOUD + """
from workbench.errors import BudgetExceeded
from workbench.gateway import attempts
from workbench.store import open_store
open_store()
model, _ = cloud_model()
done = 0
for _ in range(3):
    try:
        with attempts.caller(key_name="team"):
            model.complete("hi", max_tokens=1000)
        done += 1
    except BudgetExceeded as exc:
        print("refused:", exc)
print("calls", done)
"""
    first = run_py(code, pg_home).stdout
    assert "calls 2" in first and "key budget 'team'" in first
    second = run_py(code, pg_home).stdout  # a new process: the spend is in Postgres, not in a process
    assert "calls 0" in second
    api_keys.revoke(store, "team")  # a new secret under the same name: the budget stays with the name
    with store.connection() as conn:
        conn.execute("DELETE FROM api_keys WHERE name = 'team'")
    keyed(store, "team", usd_per_day=usd * 2.5)
    assert "calls 0" in run_py(code, pg_home).stdout
    assert ledger(store, "key", "team")["calls"] == 2


def test_the_daily_cloud_budget_resets_on_the_next_utc_day(store, monkeypatch):
    model, usd = cloud_model()
    monkeypatch.setenv("WORKBENCH_DAILY_CLOUD_BUDGET_USD", str(usd * 2.5))
    reload_settings()
    with store.connection() as conn:
        conn.execute("DELETE FROM spend_ledger WHERE scope = 'day'")
    late = datetime(2031, 3, 4, 23, 59, 58, tzinfo=timezone.utc)
    monkeypatch.setattr(shared_spend, "clock", lambda: late)
    model.complete("hi", max_tokens=MAX_TOKENS)
    model.complete("hi", max_tokens=MAX_TOKENS)
    with pytest.raises(BudgetExceeded) as err:
        model.complete("hi", max_tokens=MAX_TOKENS)
    assert "daily cloud budget of 2031-03-04 (UTC)" in str(err.value)
    assert "WORKBENCH_DAILY_CLOUD_BUDGET_USD" in str(err.value)
    monkeypatch.setattr(shared_spend, "clock", lambda: late + timedelta(seconds=3))  # 00:00:01 the next day
    assert model.complete("hi", max_tokens=MAX_TOKENS).text == "ok"
    monkeypatch.setenv("WORKBENCH_DAILY_CLOUD_BUDGET_USD", "0")
    reload_settings()
    with pytest.raises(BudgetExceeded, match=r"is \$0, so every call is refused"):
        model.complete("hi", max_tokens=MAX_TOKENS)


def test_an_unpriced_cloud_model_is_refused_before_the_call_unless_priced(store, tmp_path, monkeypatch):
    model, _ = cloud_model(name="gpt-imaginary")
    namespace["CALLS"].clear()
    with pytest.raises(UnpricedCloudModel) as err:
        model.complete("hi", max_tokens=10)
    message = str(err.value)
    assert "\n" not in message and "WORKBENCH_PRICES_FILE" in message and "openai: {gpt-imaginary:" in message
    assert namespace["CALLS"] == []  # never called
    prices = tmp_path / "prices.yaml"
    prices.write_text("openai: {gpt-imaginary: {input: 1.0, output: 2.0}}\n")
    monkeypatch.setenv("WORKBENCH_PRICES_FILE", str(prices))
    reload_settings()
    model, _ = cloud_model(name="gpt-imaginary")
    assert model.complete("hi", max_tokens=10).text == "ok"


def test_a_tasks_budget_usd_is_counted_in_the_ledger_whoever_calls(store):
    """The task's budget_usd from its row: the calls of every process running the task count against it."""
    model, usd = cloud_model()
    with store.connection() as conn:
        task_id = str(conn.execute("INSERT INTO tasks (prompt, budget_usd) VALUES ('x', %s) RETURNING id",
                                   (usd * 1.5,)).fetchone()[0])
    with telemetry.task(task_id, agent="coder"):
        assert model.complete("hi", max_tokens=MAX_TOKENS).text == "ok"
        with pytest.raises(BudgetExceeded) as err:
            model.complete("hi", max_tokens=MAX_TOKENS)
    assert f"task budget '{task_id}'" in str(err.value) and "budget_usd" in str(err.value)
    assert ledger(store, "task", task_id) == {"settled": pytest.approx(usd), "reserved": 0, "calls": 1}
    assert model.complete("hi", max_tokens=MAX_TOKENS).text == "ok"  # outside the task: not its budget


def test_a_stored_key_rate_limit_is_shared(store):
    model, _ = cloud_model()
    keyed(store, "chatty", per_minute=2)
    now = datetime(2031, 5, 6, 7, 8, 30, tzinfo=timezone.utc)
    shared_spend.clock = lambda: now
    try:
        with attempts.caller(key_name="chatty"):
            model.complete("1", max_tokens=5)
            model.complete("2", max_tokens=5)
            with pytest.raises(RateLimited) as err:
                model.complete("3", max_tokens=5)
            assert err.value.retry_after == pytest.approx(30)
            now = now + timedelta(seconds=31)  # the next minute
            assert model.complete("4", max_tokens=5).text == "ok"
    finally:
        shared_spend.clock = shared_spend._utc_now


DOWN = CLOUD + """
import sys, time
from pathlib import Path
from workbench.errors import SpendLedgerUnavailable
from workbench.gateway import attempts
from workbench.store import open_store
from workbench.store import postgres as embedded
from workbench.testing import FunctionModel
from workbench.gateway import policy
from workbench.gateway.budget import BudgetModel

store = open_store()
cloud, _ = cloud_model()
local_fn = FunctionModel(lambda m, o: "local ok", name="qwen2.5-coder-0.5b")
local_fn.provider = "local"
local = BudgetModel(local_fn, policy.load())
with attempts.caller(key_name="someone"):
    print("before:", cloud.complete("hi", max_tokens=10).text, local.complete("hi", max_tokens=10).text)
    embedded.stop(Path(store.home) / "postgres")
    t = time.monotonic()
    try:
        cloud.complete("hi", max_tokens=10)
        print("cloud: ran")
    except SpendLedgerUnavailable as exc:
        print(f"cloud: refused in {time.monotonic() - t:.1f} s:", exc)
    print("local:", local.complete("hi", max_tokens=10).text)
"""


def test_postgres_down_refuses_cloud_calls_and_lets_local_ones_run(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("WORKBENCH_ALLOW_NETWORK", "1")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    root = _pg_tmp()
    home = root / "home"
    home.mkdir()
    try:
        out = run_py(DOWN, home, timeout=120).stdout
    finally:
        embedded.stop(home / "postgres")
        shutil.rmtree(root, ignore_errors=True)
    assert "before: ok local ok" in out
    refused = next(line for line in out.splitlines() if line.startswith("cloud:"))
    assert "refused" in refused and "cloud calls are refused" in refused and "Local models still run" in refused
    assert float(refused.split(" in ")[1].split(" s")[0]) < 10
    assert "local: local ok" in out


def test_keys_limit_refuses_bad_input_in_one_line(store, pg_home):  # noqa: F811
    from helpers import run_cli

    env = {"WORKBENCH_HOME": str(pg_home)}
    keyed(store, "cli-key")
    for args, code, says in ((["nobody", "--per-minute", "3"], 4, "No active key named 'nobody'"),
                             (["cli-key", "--usd-per-day", "nan"], 2, "--usd-per-day"),
                             (["cli-key", "--usd-per-day", "inf"], 2, "--usd-per-day"),
                             (["cli-key", "--per-minute", "-1"], 2, "--per-minute")):
        out = run_cli("keys", "limit", *args, env=env, timeout=120)
        assert out.returncode == code and says in out.stderr and "Traceback" not in out.stderr, (args, out.stderr)
    out = run_cli("keys", "limit", "cli-key", "--usd-per-day", "0.25", "--json", env=env, timeout=120)
    assert json.loads(out.stdout) == {"name": "cli-key", "budget_usd_per_day": 0.25, "rate_per_minute": None}
    with store.connection() as conn:
        assert spend.key_limits(conn, "cli-key") == (0.25, None)
