"""Postgres -> DuckDB sync: exactly once across failures and crashes, tasks upserted, Parquet readable
from another process while a sync runs, and notebook 02 on real events."""

from __future__ import annotations

import json
import signal
import time
import uuid

import duckdb
import pytest
from helpers import REPO
from test_store import count, pg_home, run_py, spawn_py, store, wait_line  # noqa: F401 (fixtures)

from workbench.store import analytics, close_store, open_store
from workbench.store import sync as sync_mod
from workbench.store.sync import Syncer

pytestmark = pytest.mark.timeout(300)


class Crash(Exception):
    pass


def duck_count(path, sql: str, *params) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchone()[0]
    finally:
        con.close()


def emit_n(store, tid: str, n: int, **fields) -> None:
    for i in range(n):
        store.writer.emit("llm_call", task_id=tid, payload={"i": i}, **fields)
    store.flush()


def test_threads_times_events_reach_duckdb_exactly_once(store, tmp_path):
    tasks = [str(uuid.uuid4()) for _ in range(5)]
    for tid in tasks:
        emit_n(store, tid, 1500, model="m", tokens_in=2, tokens_out=3, cost_usd=0.5, duration_ms=10)
    syncer = Syncer(store, tmp_path / "a.duckdb", tmp_path / "analytics", batch_rows=4000)
    result = syncer.sync_once()
    assert result.events_watermark == count(store, "SELECT max(seq) FROM events")
    for tid in tasks:
        assert duck_count(syncer.duckdb_path, "SELECT count(*) FROM events WHERE task_id = ?", tid) == 1500
    total = count(store, "SELECT count(*) FROM events")
    assert duck_count(syncer.duckdb_path, "SELECT count(DISTINCT seq) FROM events") == total
    assert syncer.sync_once().events_copied == 0  # nothing new: nothing copied twice


def test_sync_interrupted_mid_batch_resumes_exactly_once(store, tmp_path):
    tid = str(uuid.uuid4())
    emit_n(store, tid, 12_000)
    syncer = Syncer(store, tmp_path / "b.duckdb", tmp_path / "analytics", batch_rows=2500)
    batches = []

    def fail_third(stage: str) -> None:
        if stage == "events_inserted":
            batches.append(1)
            if len(batches) == 3:
                raise Crash("power cut after the rows were inserted, before the watermark")

    syncer.failpoint = fail_third
    with pytest.raises(Crash):
        syncer.sync_once()
    copied = duck_count(syncer.duckdb_path, "SELECT count(*) FROM events")
    watermark = int(duck_count(syncer.duckdb_path, "SELECT value FROM _sync_state WHERE key = 'events_seq'"))
    # Two batches committed with their watermark; the third rolled back, rows and watermark together.
    assert 0 < copied == count(store, "SELECT count(*) FROM events WHERE seq <= %s", watermark)
    assert duck_count(syncer.duckdb_path, "SELECT max(seq) FROM events") == watermark
    syncer.failpoint = None
    syncer.sync_once()
    total = count(store, "SELECT count(*) FROM events")
    assert duck_count(syncer.duckdb_path, "SELECT count(*) FROM events") == total
    assert duck_count(syncer.duckdb_path, "SELECT count(DISTINCT event_id) FROM events") == total
    assert duck_count(syncer.duckdb_path, "SELECT count(*) FROM events WHERE task_id = ?", tid) == 12_000


@pytest.mark.parametrize("stage", ["events_inserted", "tasks_inserted", "published"])
def test_sync_process_killed_mid_round_resumes_exactly_once(store, pg_home, tmp_path, stage):
    tid = str(uuid.uuid4())
    emit_n(store, tid, 6000)
    with store.connection() as conn:
        conn.execute("INSERT INTO tasks (id, prompt) VALUES (%s, 'p')", (tid,))
    path = tmp_path / "killed.duckdb"
    proc = spawn_py(f"""
        import os
        from workbench.store import Store
        from workbench.store.sync import Syncer
        s = Store.open(url="", writer=False)
        sy = Syncer(s, r"{path}", r"{tmp_path / 'analytics'}", batch_rows=2000)
        seen = []
        def crash(stage):
            seen.append(stage)
            if stage == "{stage}" and seen.count(stage) == (2 if stage == "events_inserted" else 1):
                os._exit(9)   # a real crash: no rollback, no close, DuckDB recovers from its WAL
        sy.failpoint = crash
        sy.sync_once()
    """, pg_home)
    proc.communicate(timeout=120)
    assert proc.returncode == 9
    syncer = Syncer(store, path, tmp_path / "analytics", batch_rows=2000)
    syncer.sync_once()
    total = count(store, "SELECT count(*) FROM events")
    assert duck_count(path, "SELECT count(*) FROM events") == total
    assert duck_count(path, "SELECT count(DISTINCT seq) FROM events") == total
    assert duck_count(path, "SELECT count(*) FROM tasks WHERE id = ?", tid) == 1
    snap = analytics.read_manifest(tmp_path / "analytics")
    assert sum(p["rows"] for p in snap["events"]) == total  # Parquet parts: no gap, no overlap


def test_tasks_are_upserted_and_deletions_follow(store, tmp_path):
    ids = [str(uuid.uuid4()) for _ in range(3)]
    with store.connection() as conn:
        for tid in ids:
            conn.execute("INSERT INTO tasks (id, title, prompt) VALUES (%s, 't', 'p')", (tid,))
    syncer = Syncer(store, tmp_path / "t.duckdb", tmp_path / "analytics")
    assert syncer.sync_once().tasks_copied >= 3
    with store.connection() as conn:
        conn.execute("UPDATE tasks SET status = 'queued', attempts = 1 WHERE id = %s", (ids[0],))
        conn.execute("DELETE FROM tasks WHERE id = %s", (ids[1],))
    result = syncer.sync_once()
    assert result.tasks_copied == 1 and result.tasks_deleted == 1
    path = syncer.duckdb_path
    assert duck_count(path, "SELECT count(*) FROM tasks WHERE id = ?", ids[0]) == 1
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT status, attempts FROM tasks WHERE id = ?", [ids[0]]).fetchone() == ("queued", 1)
    assert con.execute("SELECT count(*) FROM tasks WHERE id = ?", [ids[1]]).fetchone()[0] == 0
    con.close()


def test_copy_of_another_database_is_rebuilt(store, tmp_path, monkeypatch):
    syncer = Syncer(store, tmp_path / "r.duckdb", tmp_path / "analytics")
    syncer.sync_once()
    con = duckdb.connect(str(syncer.duckdb_path))
    con.execute("UPDATE _sync_state SET value = 'some-other-database' WHERE key = 'instance_id'")
    con.execute("INSERT INTO events (seq, event_id, ts, kind) VALUES (-1, gen_random_uuid(), now(), 'only-here')")
    old_rows = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    result = syncer.sync_once()
    assert result.rebuilt
    assert duck_count(syncer.duckdb_path, "SELECT count(*) FROM events") == count(store, "SELECT count(*) FROM events")
    # the copy it replaced was kept first, whole (with the row only it had)
    [kept] = (tmp_path / "backups").glob("analytics-some-other-database-*.duckdb")
    assert duck_count(kept, "SELECT count(*) FROM events") == old_rows
    assert duck_count(kept, "SELECT count(*) FROM events WHERE kind = 'only-here'") == 1


def test_parquet_parts_compact_and_garbage_is_collected(store, tmp_path, monkeypatch):
    monkeypatch.setattr(sync_mod, "MAX_SMALL_PARTS", 3)
    monkeypatch.setattr(sync_mod, "GC_GRACE_S", 0.0)
    root = tmp_path / "analytics"
    syncer = Syncer(store, tmp_path / "c.duckdb", root)
    syncer.sync_once()
    tid = str(uuid.uuid4())
    for _ in range(6):
        emit_n(store, tid, 10)
        syncer.sync_once()
    manifest = analytics.read_manifest(root)
    assert len(manifest["events"]) <= 4
    files = {p.name for p in (root / "events").iterdir()}
    assert files == {p["file"].split("/")[1] for p in manifest["events"]}
    con = analytics.connect(tmp_path)  # analytics_dir(home) = home / "analytics"
    assert con.execute("SELECT count(*) FROM events WHERE task_id = ?", [tid]).fetchone()[0] == 60
    assert con.execute("SELECT count(*) FROM events").fetchone()[0] == count(store, "SELECT count(*) FROM events")


def test_analytics_before_any_sync_says_what_to_do(tmp_path):
    from workbench.errors import StoreError

    with pytest.raises(StoreError, match="workbench db sync"):
        analytics.query("SELECT 1", home=tmp_path / "nothing")


def test_second_process_queries_analytics_while_a_sync_runs(store, pg_home):
    """The served app's situation: one process syncs continuously, a notebook process queries meanwhile."""
    tid = str(uuid.uuid4())
    syncing = spawn_py("""
        import signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from workbench.cli import main
        main(["db", "sync", "--watch", "--interval", "0.2", "--json"])
    """, pg_home)
    reader = None
    try:
        wait_line(syncing, "events_copied")  # first round done: a snapshot exists
        reader = spawn_py(f"""
            import json, time
            from workbench.store import analytics
            counts, end = [], time.monotonic() + 90
            while time.monotonic() < end:
                n = int(analytics.query("SELECT count(*) AS n FROM events WHERE task_id = '{tid}'")["n"][0])
                counts.append(n)
                if len(counts) == 1:
                    print("ready", flush=True)
                if n == 20000:
                    break
                time.sleep(0.05)
            print(json.dumps(counts), flush=True)
        """, pg_home)
        wait_line(reader, "ready")  # it has queried once: everything below happens while it keeps querying
        for _ in range(10):  # events keep arriving while both run
            emit_n(store, tid, 2000)
            time.sleep(0.1)
        out, err = reader.communicate(timeout=120)
        assert reader.returncode == 0, err[-3000:]
        counts = json.loads(out.strip().splitlines()[-1])
        assert counts[-1] == 20000, counts[-20:]
        assert counts == sorted(counts)  # never went backwards, never double-counted
        assert counts[0] == 0  # it was querying before the first of these events was synced, and until the last
    finally:
        syncing.send_signal(signal.SIGINT)
        syncing.communicate(timeout=60)
        if reader and reader.poll() is None:
            reader.kill()
    assert syncing.returncode == 0
    # The DuckDB file itself is free between rounds and exactly once too.
    assert duck_count(pg_home / "workbench.duckdb", "SELECT count(*) FROM events WHERE task_id = ?", tid) == 20000


def test_ctrl_c_stops_a_watching_sync_whatever_error_duckdb_turns_it_into(store, pg_home):
    """A SIGINT inside a DuckDB query comes back as a plain RuntimeError("Query interrupted"): --watch must
    stop on it, not log it as a failed round and go on syncing forever."""
    syncing = spawn_py("""
        import signal
        import duckdb
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from workbench.cli import main
        from workbench.store import sync

        def long_query(self):
            con = duckdb.connect()
            con.execute("CREATE TABLE t AS SELECT range AS i FROM range(20000000)")
            print("querying", flush=True)
            con.execute("SELECT sum(a.i * b.i) FROM t a, (SELECT * FROM t LIMIT 1000) b").fetchall()

        sync.Syncer.sync_once = long_query
        main(["db", "sync", "--watch", "--interval", "0.2", "--json"])
    """, pg_home)
    try:
        wait_line(syncing, "querying")
        time.sleep(0.5)  # inside the long query
        syncing.send_signal(signal.SIGINT)
        _, err = syncing.communicate(timeout=60)
    finally:
        if syncing.poll() is None:
            syncing.kill()
    assert syncing.returncode == 0 and "sync failed, retrying" not in err, err[-2000:]


def test_notebook_02_runs_on_real_events(store, pg_home, tmp_path):
    import papermill

    from workbench import telemetry
    from workbench.gateway.logged import LoggedModel
    from workbench.gateway.priced import PricedModel
    from workbench.testing import FunctionModel

    open_store(pg_home, url="")
    try:
        model = LoggedModel(PricedModel(FunctionModel(lambda m, o: "reply " * 5, name="nb")))
        tid = str(uuid.uuid4())
        with telemetry.task(tid):
            for i in range(20):
                model.complete(f"question {i}")
        open_store().flush()
    finally:
        close_store()
    Syncer(store).sync_once()
    out = tmp_path / "02.out.ipynb"
    papermill.execute_notebook(str(REPO / "notebooks" / "02_execution_log.ipynb"), str(out),
                               parameters={"home": str(pg_home)}, kernel_name="python3", cwd=str(REPO),
                               progress_bar=False)
    nb = json.loads(out.read_text())
    text = json.dumps(nb)
    assert "test:nb" in text  # the model of those calls shows up in the tables and plots


def test_duckdb_file_held_by_another_process_is_a_clear_error(store, pg_home, tmp_path):
    from workbench.errors import StoreError

    path = tmp_path / "held.duckdb"
    emit_n(store, str(uuid.uuid4()), 10)
    Syncer(store, path, tmp_path / "analytics").sync_once()
    holder = spawn_py(f"""
        import duckdb, time
        con = duckdb.connect(r"{path}")   # e.g. a duckdb shell left open on the file
        print("holding", flush=True)
        time.sleep(60)
    """, pg_home)
    try:
        wait_line(holder, "holding")
        with pytest.raises(StoreError, match="Another process has the file open.*analytics.query"):
            Syncer(store, path, tmp_path / "analytics").sync_once(lock_timeout_s=1)
    finally:
        holder.kill()
        holder.wait()
    emit_n(store, str(uuid.uuid4()), 10)
    assert Syncer(store, path, tmp_path / "analytics").sync_once().events_copied == 10  # free again: works


def test_serve_store_syncs_continuously_and_flushes_before_its_last_round(store, pg_home, monkeypatch):
    from workbench import telemetry
    from workbench.config import reload_settings
    from workbench.store import serve_store

    monkeypatch.setenv("WORKBENCH_HOME", str(pg_home))
    reload_settings()
    tid = str(uuid.uuid4())
    with serve_store(sync_interval_s=0.3):
        for _ in range(500):
            telemetry.emit("tool_call", task_id=tid)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the background sync picks them up without being asked
            try:
                if analytics.query(f"SELECT count(*) AS n FROM events WHERE task_id = '{tid}'")["n"][0] == 500:
                    break
            except Exception:  # no snapshot yet
                pass
            time.sleep(0.2)
        else:
            raise AssertionError("the background sync never published the events")
        for _ in range(300):  # emitted just before shutdown: flushed, then synced by the last round
            telemetry.emit("tool_call", task_id=tid)
    assert analytics.query(f"SELECT count(*) AS n FROM events WHERE task_id = '{tid}'")["n"][0] == 800
