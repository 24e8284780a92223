"""`workbench db migrate|status|sync` as a user runs them (subprocess), and the `postgres` doctor check."""

from __future__ import annotations

import json
import uuid

import pytest
from helpers import run_cli
from test_store import pg_tmp  # noqa: F401 (fixture: Postgres data outside /tmp/pytest-of-root)

from workbench.config import reload_settings
from workbench.store import Store
from workbench.store import postgres as embedded

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def home(pg_tmp, monkeypatch):  # noqa: F811
    monkeypatch.setenv("WORKBENCH_HOME", str(pg_tmp / "home"))
    reload_settings()
    return pg_tmp / "home"


def test_db_commands_on_a_fresh_home_leave_no_server_behind(home):
    pgdata = home / "postgres"
    try:
        status = run_cli("db", "status", "--json")
        assert status.returncode == 0, status.stderr
        before = json.loads(status.stdout)
        assert before["server"]["mode"] == "embedded" and before["server"]["started_by_this_process"]
        assert before["migrations"]["applied"] == [] and before["migrations"]["pending"]  # fresh: nothing yet
        assert embedded.postmaster_pid(pgdata) is None  # the command stopped what it started

        migrate = run_cli("db", "migrate")
        assert migrate.returncode == 0, migrate.stderr
        assert "applied" in migrate.stdout and "m003_events" in migrate.stdout
        again = run_cli("db", "migrate", "--json")
        assert json.loads(again.stdout)["applied_now"] == []

        s = Store.open(home, url="")  # put something in, then sync it from the CLI
        try:
            tid = str(uuid.uuid4())
            for i in range(250):
                s.writer.emit("llm_call", task_id=tid, model="m", cost_usd=0.01)
            s.flush()
            synced = run_cli("db", "sync", "--json")  # attaches to the server this test holds
            assert synced.returncode == 0, synced.stderr
            result = json.loads(synced.stdout.strip().splitlines()[-1])
            assert result["events_copied"] == 250 and result["events_watermark"] == 250 and result["published"]
            human = run_cli("db", "sync")
            assert "copied 0 events" in human.stdout
            after = json.loads(run_cli("db", "status", "--json").stdout)
            assert not after["server"]["started_by_this_process"]  # it attached
            assert after["counts"]["events"] == 250 and after["analytics"]["events_watermark"] == 250
            assert embedded.postmaster_pid(pgdata) is not None  # and did not stop the server we hold
            text = run_cli("db", "status")
            assert "tasks 0 · events 250" in text.stdout and "analytics" in text.stdout
        finally:
            s.close()
        assert embedded.postmaster_pid(pgdata) is None
    finally:
        embedded.stop(pgdata)


def test_db_error_is_one_clear_line_not_a_traceback(tmp_path):
    out = run_cli("db", "status", env={"WORKBENCH_POSTGRES_URL": f"postgresql://u:pw@/db?host={tmp_path}"})
    assert out.returncode == 1
    assert "Cannot connect to Postgres" in out.stderr and "WORKBENCH_POSTGRES_URL" in out.stderr
    assert "Traceback" not in out.stderr and ":pw@" not in out.stderr


def test_postgres_health_check_reports_an_unreachable_server(tmp_path, monkeypatch):
    from workbench.health import CHECKS, run_check
    from workbench.store import health  # noqa: F401 (registers the check)

    monkeypatch.setenv("WORKBENCH_POSTGRES_URL", f"postgresql://u:pw@/db?host={tmp_path}")
    reload_settings()
    result = run_check(CHECKS["postgres"])
    assert result.status == "fail" and "Cannot connect to Postgres" in result.detail
    assert "WORKBENCH_POSTGRES_URL" in result.fix


def test_postgres_health_check_leaves_no_server(home):
    from workbench.health import CHECKS, run_check
    from workbench.store import health  # noqa: F401 (registers the check)

    try:
        result = run_check(CHECKS["postgres"])
        assert result.status == "ok" and "pending (applied when the store opens" in result.detail, result.detail
        Store.open(home, url="").close()  # migrate
        result = run_check(CHECKS["postgres"])
        assert result.status == "ok" and "pending" not in result.detail, result.detail
        assert "started for this check" in result.detail
        assert embedded.postmaster_pid(home / "postgres") is None
    finally:
        embedded.stop(home / "postgres")


def test_ctrl_c_inside_a_duckdb_query_stops_sync_watch(monkeypatch):
    """DuckDB turns a SIGINT that arrives during its query into its own InterruptException (the KeyboardInterrupt
    is consumed): `db sync --watch` must stop on it, not count it as a failed round and retry forever."""
    import threading

    import duckdb

    from workbench.cli import db
    from workbench.store import sync as sync_module

    rounds: list[int] = []

    class Interrupted:
        def __init__(self, store):
            pass

        def sync_once(self):
            rounds.append(1)
            try:
                raise duckdb.InterruptException("Query interrupted")
            except duckdb.InterruptException as exc:
                raise RuntimeError("sync round failed") from exc  # as a wrapper in the store would

    class NoStore:
        def close(self):
            pass

    monkeypatch.setattr(Store, "open", classmethod(lambda cls, **kw: NoStore()))
    monkeypatch.setattr(sync_module, "Syncer", Interrupted)
    done = threading.Thread(target=db.sync, kwargs={"watch": True, "interval": 0.1, "as_json": True}, daemon=True)
    done.start()
    done.join(10)
    assert not done.is_alive() and rounds == [1]
