"""`workbench backup` and `workbench restore`, for real: a store with tasks, events, an API key and a synced
DuckDB copy is backed up while its embedded Postgres runs, then restored into a fresh home with its own
fresh embedded Postgres; every table's row count and checksum, and the DuckDB rows, must match. A second
restore into the now non-empty store is refused without --force and works with it; a damaged backup is
refused; the backup holds no secret."""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
from pathlib import Path

import duckdb
import pytest
from helpers import home_dir, run_cli

from workbench import events
from workbench.store import Store, api_keys
from workbench.store import postgres as embedded
from workbench.store.backup import table_counts
from workbench.store.sync import Syncer
from workbench.tasks.records import NewTask
from workbench.tasks.service import TaskService

pytestmark = pytest.mark.timeout(600)
N_TASKS, EVENTS_PER_TASK = 12, 25


def checksums(store: Store) -> dict[str, str]:
    """md5 of every table's rows, in a stable order (each row as text)."""
    with store.connection() as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return {t: conn.execute(f'SELECT md5(coalesce(string_agg(r::text, \'|\' ORDER BY r::text), \'\')) '
                                f'FROM public."{t}" r').fetchone()[0] for t in sorted(tables)}


def duck_counts(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()]
        return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in sorted(tables)}
    finally:
        con.close()


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A home with data: tasks, their events (through the real writer), a key, a DuckDB sync."""
    home = home_dir("wb-backup-src-")
    store = Store.open(home, url="")
    try:
        service = TaskService(store)
        for i in range(N_TASKS):
            task = service.create(NewTask(prompt=f"task {i} with 'quotes' and ünïcode", title=f"t{i}"))
            for j in range(EVENTS_PER_TASK):
                store.record(events.Event(kind="tool_call", task_id=str(task["id"]), agent="coder",
                                          duration_ms=j * 1.5, payload={"i": i, "j": j, "text": "x" * j}))
        store.flush()
        secret = api_keys.create(store, "ops", "admin")
        Syncer(store).sync_once()
        yield home, store, secret
    finally:
        store.close()
        embedded.stop(home / "postgres")
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def archive(source):
    home, _, _ = source
    out = Path(tempfile.mkdtemp(prefix="wb-backup-out-")) / "wb.tar.gz"
    done = run_cli("backup", str(out), "--json", env={"WORKBENCH_HOME": str(home)}, timeout=300)
    assert done.returncode == 0, done.stderr
    yield out, json.loads(done.stdout)
    shutil.rmtree(out.parent, ignore_errors=True)


@pytest.fixture
def target():
    home = home_dir("wb-backup-dst-")
    yield home
    embedded.stop(home / "postgres")
    shutil.rmtree(home, ignore_errors=True)


def test_backup_holds_the_dump_the_analytics_and_no_secret(source, archive):
    home, store, secret = source
    path, manifest = archive
    assert manifest["counts"]["tasks"] == N_TASKS and manifest["counts"]["events"] >= N_TASKS * EVENTS_PER_TASK
    assert manifest["analytics"] == "copied" and manifest["instance_id"] == store.instance_id()
    with tarfile.open(path) as tar:
        names = tar.getnames()
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert {"manifest.json", "postgres.dump", "analytics.duckdb", "config/settings.json"} <= set(names)
    assert secret.encode() not in blob and secret[13:].encode() not in blob
    again = run_cli("backup", str(path), env={"WORKBENCH_HOME": str(home)}, timeout=300)
    assert again.returncode == 1 and "exists already" in again.stderr and "Traceback" not in again.stderr


def test_restore_into_a_fresh_home_matches_row_for_row(source, archive, target):
    _, src, secret = source
    path, _ = archive
    done = run_cli("restore", str(path), "--json", env={"WORKBENCH_HOME": str(target)}, timeout=300)
    assert done.returncode == 0, done.stderr
    restored = Store.open(target, url="", writer=False)
    try:
        assert table_counts(restored) == table_counts(src)
        assert checksums(restored) == checksums(src)
        assert restored.instance_id() == src.instance_id()
        assert api_keys.load(restored).verify(secret).name == "ops"  # the restored key still works
        restored_duck = duck_counts(target / "workbench.duckdb")
        assert restored_duck == duck_counts(src.home / "workbench.duckdb") and restored_duck
        Syncer(restored).sync_once()  # the restored copy belongs to the restored database: no rebuild
        assert duck_counts(target / "workbench.duckdb") == restored_duck
    finally:
        restored.close()

    # now the store holds data: a second restore is refused, and nothing changes
    refused = run_cli("restore", str(path), env={"WORKBENCH_HOME": str(target)}, timeout=300)
    lines = [line for line in refused.stderr.splitlines() if line.strip() and "Warning" not in line
             and "user_runtime_dir" not in line]
    assert refused.returncode == 1 and len(lines) == 1 and "--force" in lines[0], refused.stderr
    forced = run_cli("restore", str(path), "--force", env={"WORKBENCH_HOME": str(target)}, timeout=300)
    assert forced.returncode == 0, forced.stderr
    again = Store.open(target, url="", writer=False)
    try:
        assert checksums(again) == checksums(src)
    finally:
        again.close()


def test_a_damaged_backup_is_refused(archive, target, tmp_path):
    path, _ = archive
    work = tmp_path / "x"
    with tarfile.open(path) as tar:
        tar.extractall(work, filter="data")
    dump = work / "postgres.dump"
    dump.write_bytes(dump.read_bytes()[:-100] + b"\0" * 100)
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(damaged, "w:gz") as tar:
        for item in work.iterdir():
            tar.add(item, arcname=item.name)
    out = run_cli("restore", str(damaged), env={"WORKBENCH_HOME": str(target)}, timeout=300)
    assert out.returncode == 1 and "damaged" in out.stderr and "Traceback" not in out.stderr
    missing = run_cli("restore", str(tmp_path / "nope.tar.gz"), env={"WORKBENCH_HOME": str(target)}, timeout=300)
    assert missing.returncode == 1 and "No backup at" in missing.stderr
