"""Postgres -> DuckDB analytics copy: incremental, exactly once, and readable while it runs.

    result = Syncer(store).sync_once()     # what `workbench db sync` does; the server runs it every 2 s

Exactly once. Each batch of events (`seq > watermark`, in seq order) is inserted into DuckDB *and* the
watermark advanced in one DuckDB transaction: a crash before the commit leaves neither, so the next round
copies the same rows again; after it, both. (Postgres guarantees that seq follows commit order: see
migrations.py.) Tasks change, so they are upserted: rows written by transactions older than the oldest one
still running (`row_xid < pg_snapshot_xmin`) are final, and the tasks watermark is that xmin.

Readable while it runs. DuckDB lets no other process open a file that one process holds for writing, even
read-only. So the sync opens `workbench.duckdb`, writes and closes it every round, and
publishes what it copied as Parquet under `<home>/analytics/` (one part file per round, compacted now and
then, listed by an atomically replaced manifest.json). Notebooks read those through
`workbench.store.analytics` and never touch the DuckDB file, so they never block the sync and vice versa.
One sync at a time: rounds take an exclusive file lock (`<home>/.sync.lock`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from workbench import events
from workbench.errors import StoreError
from workbench.store import analytics, sync_memory
from workbench.store.sync_rows import ChangingTable, copy_changed

log = logging.getLogger(__name__)
SCHEMA_VERSION = "1"  # bump when the DuckDB tables change: the copy is rebuilt from Postgres
COMPACT_ROWS = 500_000  # parts smaller than this are merged ...
MAX_SMALL_PARTS = 32  # ... once there are more than this many in a row
GC_GRACE_S = 600.0  # unreferenced Parquet files are deleted after this long (readers may still hold them)

# Events leave Postgres as one NDJSON value per batch (row_to_json + string_agg, built by the server) and are
# parsed by Arrow's C++ reader: no Python object per value or per row. fetchall() + pa.array, or COPY TO
# STDOUT (one message per row), spent most of the sync's time in Python. Timestamps travel as epoch µs.
def _wire(column: str, pg_type: str) -> str:
    return {"timestamptz": f"(extract(epoch FROM {column}) * 1000000)::bigint AS {column}",
            "jsonb": f"{column}::text AS {column}"}.get(pg_type, column)


_EVENTS_FETCH = (
    "SELECT convert_to(string_agg(row_to_json(t)::text, E'\\n' ORDER BY seq), 'UTF8'), count(*) FROM ("
    f" SELECT seq, {', '.join(_wire(c, t) for c, t in zip(events.COLUMNS, events.PG_TYPES))}"
    " FROM events WHERE seq > %s ORDER BY seq LIMIT %s) t"
)
_EVENTS_ARROW = events.arrow_schema()
_DUCK_CAST = {"uuid": "::UUID", "jsonb": "::JSON"}
_EVENTS_INSERT = (
    f"INSERT INTO events SELECT seq, {', '.join(c + _DUCK_CAST.get(t, '') for c, t in zip(events.COLUMNS, events.PG_TYPES))}"
    " FROM batch WHERE seq > ?"
)


def _us(col: str) -> str:
    return f"(extract(epoch FROM {col}) * 1000000)::bigint"


_TASKS_SELECT = (
    "SELECT id::text, title, prompt, kind, language, complexity, summary, status, priority, model, budget_usd,"
    f" parent_id::text, result::text, error, attempts, {_us('created_at')}, {_us('started_at')},"
    f" {_us('finished_at')}, {_us('updated_at')}"
    " FROM tasks WHERE row_xid >= %s::text::xid8 AND row_xid < %s::text::xid8"
)
_TS = pa.timestamp("us", tz="UTC")
_TASKS_ARROW = pa.schema([
    ("id", pa.string()), ("title", pa.string()), ("prompt", pa.string()), ("kind", pa.string()),
    ("language", pa.string()), ("complexity", pa.int16()), ("summary", pa.string()), ("status", pa.string()),
    ("priority", pa.int32()), ("model", pa.string()), ("budget_usd", pa.float64()), ("parent_id", pa.string()),
    ("result", pa.string()), ("error", pa.string()), ("attempts", pa.int32()), ("created_at", _TS),
    ("started_at", _TS), ("finished_at", _TS), ("updated_at", _TS),
])
_TASKS_INSERT = (
    "INSERT INTO tasks SELECT id::UUID, title, prompt, kind, language, complexity, summary, status, priority,"
    " model, budget_usd, parent_id::UUID, result::JSON, error, attempts, created_at, started_at, finished_at,"
    " updated_at FROM batch"
)
_TASKS = ChangingTable(copy="tasks", source="tasks", watermark="tasks_xid", select=_TASKS_SELECT,
                       insert=_TASKS_INSERT, arrow=_TASKS_ARROW)


@contextlib.contextmanager
def sync_lock(directory: Path, timeout_s: float, poll_s: float = 0.05) -> Iterator[None]:
    """The sync's lock file in `directory` (`.sync.lock`), held exclusively: one sync round at a time, and
    nothing else (a backup) touches the DuckDB file while a round runs. StoreError after `timeout_s`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / ".sync.lock"
    with open(path, "a+") as f:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreError(f"Another sync has held {path} for over {timeout_s:g} s (the served app "
                                     f"syncs continuously). Try again, or stop the other `workbench` process.")
                time.sleep(poll_s)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass
class SyncResult:
    events_copied: int = 0
    tasks_copied: int = 0
    tasks_deleted: int = 0
    memory_copied: int = 0
    memory_deleted: int = 0
    events_watermark: int = 0
    tasks_watermark: int = 0
    rebuilt: bool = False
    published: bool = False
    parquet_parts: int = 0
    duration_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Syncer:
    """Copies one store's Postgres into a DuckDB file and publishes Parquet snapshots beside it."""

    def __init__(self, store, duckdb_path: Path | None = None, analytics_dir: Path | None = None,
                 batch_rows: int = 20_000, batch_bytes: int = 64 * 2**20):
        self.store = store
        self.duckdb_path = Path(duckdb_path or store.home / "workbench.duckdb")
        self.analytics_dir = Path(analytics_dir or analytics.analytics_dir(store.home))
        self.batch_rows, self.batch_bytes = batch_rows, batch_bytes
        # Test hook: called with a stage name ("events_inserted", "events_committed", "tasks_inserted",
        # "published"); raising (or os._exit) there simulates a crash at that point.
        self.failpoint: Callable[[str], None] | None = None

    def _fail(self, stage: str) -> None:
        if self.failpoint is not None:
            self.failpoint(stage)

    # --- one round ---------------------------------------------------------------------------------

    def sync_once(self, lock_timeout_s: float = 60.0) -> SyncResult:
        """One round: copy what is new, publish it. A failure leaves nothing half-copied (StoreError)."""
        import psycopg

        try:
            return self._round(lock_timeout_s)
        except (psycopg.Error, duckdb.Error) as exc:
            raise StoreError(f"The sync stopped: {type(exc).__name__}: {' '.join(str(exc).split())}. Nothing was "
                             f"half-copied; the next `workbench db sync` resumes from the stored watermark.") from exc

    def _round(self, lock_timeout_s: float) -> SyncResult:
        start = time.perf_counter()
        result = SyncResult()
        with self._exclusive(lock_timeout_s), self._duckdb(lock_timeout_s) as con:
            instance = self.store.instance_id()
            result.rebuilt = self._ensure_schema(con, instance)
            result.events_copied = self._copy_events(con)
            result.tasks_copied, result.tasks_deleted = self._copy_tasks(con)
            result.memory_copied, result.memory_deleted = sync_memory.copy(con, self.store, self._fail)
            state = _state(con)
            result.events_watermark = int(state["events_seq"])
            result.tasks_watermark = int(state["tasks_xid"])
            tasks_changed = bool(result.tasks_copied or result.tasks_deleted or result.rebuilt)
            memory_changed = bool(result.memory_copied or result.memory_deleted or result.rebuilt)
            result.published, result.parquet_parts = self._publish(con, instance, tasks_changed, result.rebuilt,
                                                                   memory_changed)
        result.duration_s = time.perf_counter() - start
        return result

    def _exclusive(self, timeout_s: float) -> contextlib.AbstractContextManager[None]:
        return sync_lock(self.duckdb_path.parent, timeout_s)

    @contextlib.contextmanager
    def _duckdb(self, timeout_s: float) -> Iterator[duckdb.DuckDBPyConnection]:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                con = duckdb.connect(str(self.duckdb_path))
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise StoreError(
                        f"Cannot open {self.duckdb_path} for writing: {exc}. Another process has the file open "
                        f"(a duckdb shell or notebook?). Close it: notebooks should use "
                        f"workbench.store.analytics.query(), which reads the Parquet snapshots instead."
                    ) from None
                time.sleep(0.1)
        try:
            con.execute("SET TimeZone = 'UTC'")
            yield con
        finally:
            con.close()  # every round: between rounds the file is free

    def _ensure_schema(self, con: duckdb.DuckDBPyConnection, instance: str) -> bool:
        """Create the tables; rebuild the copy when it belongs to another database or an older schema."""
        con.execute("CREATE TABLE IF NOT EXISTS _sync_state (key VARCHAR PRIMARY KEY, value VARCHAR)")
        state = _state(con)
        with self.store.connection() as pg:
            max_seq = pg.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
        stale = (state.get("schema_version") != SCHEMA_VERSION or state.get("instance_id") != instance
                 or int(state.get("events_seq", 0)) > max_seq)
        if stale:
            if state:
                kept = self._keep_old_copy(con, state)
                log.warning("rebuilding the DuckDB copy %s (another database, schema or a reset); the old copy "
                            "is kept at %s", self.duckdb_path, kept)
            con.execute("BEGIN")
            con.execute("DROP TABLE IF EXISTS events")
            con.execute("DROP TABLE IF EXISTS tasks")
            con.execute("DROP TABLE IF EXISTS memory")
            con.execute(analytics.EVENTS_DDL)
            con.execute(analytics.TASKS_DDL)
            con.execute("DELETE FROM _sync_state")
            con.execute("INSERT INTO _sync_state VALUES ('schema_version', ?), ('instance_id', ?),"
                        " ('events_seq', '0'), ('tasks_xid', '0')", [SCHEMA_VERSION, instance])
            con.execute("COMMIT")
        sync_memory.ensure(con)
        analytics.create_views(con)  # cheap; keeps the file's views equal to the code's
        return stale and bool(state)

    def _copy_events(self, con: duckdb.DuckDBPyConnection) -> int:
        copied = 0
        limit = min(self.batch_rows, 2000)  # start small; grow to batch_rows while payloads are small
        while True:
            watermark = int(_state(con)["events_seq"])
            batch, size = self._fetch_events(watermark, limit)
            if batch.num_rows == 0:
                return copied
            # Next batch: as many rows as fit batch_bytes at this batch's average size (huge payloads).
            limit = max(1, min(self.batch_rows, limit * 4, int(self.batch_bytes / max(1, size / batch.num_rows))))
            high = batch.column("seq")[batch.num_rows - 1].as_py()
            con.execute("BEGIN")
            try:
                con.register("batch", batch)
                con.execute(_EVENTS_INSERT, [watermark])
                self._fail("events_inserted")
                con.execute("UPDATE _sync_state SET value = ? WHERE key = 'events_seq'", [str(high)])
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            finally:
                con.unregister("batch")
            self._fail("events_committed")
            copied += batch.num_rows

    def _fetch_events(self, watermark: int, limit: int) -> tuple[pa.Table, int]:
        """The next `limit` events after the watermark, in seq order, as an Arrow table (and its JSON size)."""
        import io

        import psycopg
        from pyarrow import json as pajson

        while True:
            try:
                with self.store.connection() as pg:
                    data, n = pg.execute(_EVENTS_FETCH, (watermark, limit)).fetchone()
                break
            except (psycopg.errors.ProgramLimitExceeded, psycopg.errors.OutOfMemory):
                if limit == 1:
                    raise
                limit = max(1, limit // 4)  # a batch of huge payloads overflowed one value: take fewer rows
        if not n:
            return _EVENTS_ARROW.empty_table(), 0
        table = pajson.read_json(
            io.BytesIO(data),
            read_options=pajson.ReadOptions(block_size=len(data) + 1),  # a row may not straddle blocks
            parse_options=pajson.ParseOptions(explicit_schema=_EVENTS_ARROW, unexpected_field_behavior="error"),
        )
        ts = table.schema.get_field_index("ts")
        return table.set_column(ts, "ts", table.column(ts).cast(pa.timestamp("us", tz="UTC"))), len(data)

    def _copy_tasks(self, con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        return copy_changed(con, self.store, _TASKS, self._fail)

    # --- Parquet snapshots -------------------------------------------------------------------------

    def _keep_old_copy(self, con: duckdb.DuckDBPyConnection, state: dict[str, str]) -> Path:
        """Copy the tables about to be dropped to <dir>/backups/analytics-<old instance>-<time>.duckdb: a
        rebuild never loses the only copy of analytics whose database is gone (a restore, a new server)."""
        folder = self.duckdb_path.parent / "backups"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-%f")
        path = folder / f"analytics-{re.sub(r'[^A-Za-z0-9-]', '_', state.get('instance_id', 'unknown'))}-{stamp}.duckdb"
        database = con.execute("SELECT current_database()").fetchall()[0][0]
        con.execute(f"ATTACH '{str(path).replace(chr(39), chr(39) * 2)}' AS wb_old_copy")
        try:
            con.execute(f'COPY FROM DATABASE "{database}" TO wb_old_copy')
        finally:
            con.execute("DETACH wb_old_copy")
        return path

    def _publish(self, con: duckdb.DuckDBPyConnection, instance: str, tasks_changed: bool,
                 rebuilt: bool, memory_changed: bool = False) -> tuple[bool, int]:
        """Export what the manifest does not list yet; returns (published?, number of event parts)."""
        root = self.analytics_dir
        (root / "events").mkdir(parents=True, exist_ok=True)
        (root / "tasks").mkdir(parents=True, exist_ok=True)
        (root / "memory").mkdir(parents=True, exist_ok=True)
        manifest = analytics.read_manifest(root)
        if manifest is None or manifest.get("instance_id") != instance or rebuilt:
            manifest = {"format": 1, "instance_id": instance, "generation": (manifest or {}).get("generation", 0),
                        "events": [], "tasks": None}
        parts: list[dict] = manifest["events"]
        exported = parts[-1]["max_seq"] if parts else 0
        state = _state(con)
        memory_due = memory_changed or (manifest.get("memory") is None
                                        and con.execute("SELECT count(*) FROM memory").fetchall()[0][0] > 0)
        if int(state["events_seq"]) > exported or manifest["tasks"] is None or tasks_changed or memory_due:
            gen = manifest["generation"] + 1
            n, lo, hi = con.execute("SELECT count(*), min(seq), max(seq) FROM events WHERE seq > ?",
                                    [exported]).fetchall()[0]
            if n:
                parts.append(self._export_events(con, gen, exported, hi, n, lo))
                parts[:] = self._compact(con, gen, parts)
            if tasks_changed or manifest["tasks"] is None:
                name = f"tasks/tasks-g{gen:08d}.parquet"
                self._copy_to(con, "SELECT * FROM tasks ORDER BY created_at, id", root / name)
                manifest["tasks"] = name
            if memory_due:
                name = f"memory/memory-g{gen:08d}.parquet"
                self._copy_to(con, "SELECT * FROM memory ORDER BY created_at, id", root / name)
                manifest["memory"] = name
            manifest.update(generation=gen, published_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            events_watermark=int(state["events_seq"]), tasks_watermark=int(state["tasks_xid"]))
            _write_atomic(root / analytics.MANIFEST, json.dumps(manifest, indent=1))
            self._fail("published")
            self._collect_garbage(manifest)
            return True, len(parts)
        self._collect_garbage(manifest)
        return False, len(parts)

    def _export_events(self, con, gen: int, after: int, upto: int, n: int, lo: int) -> dict:
        name = f"events/part-g{gen:08d}-{lo:012d}-{upto:012d}.parquet"
        self._copy_to(con, f"SELECT * FROM events WHERE seq > {int(after)} AND seq <= {int(upto)} ORDER BY seq",
                      self.analytics_dir / name)
        return {"file": name, "min_seq": lo, "max_seq": upto, "rows": n}

    def _compact(self, con, gen: int, parts: list[dict]) -> list[dict]:
        """Merge the trailing run of small parts into one when it grows past MAX_SMALL_PARTS."""
        run = 0
        for part in reversed(parts):
            if part["rows"] >= COMPACT_ROWS:
                break
            run += 1
        if run <= MAX_SMALL_PARTS:
            return parts
        small = parts[-run:]
        lo, hi = small[0]["min_seq"], small[-1]["max_seq"]
        after = parts[-run - 1]["max_seq"] if run < len(parts) else 0
        name = f"events/part-g{gen:08d}c-{lo:012d}-{hi:012d}.parquet"
        self._copy_to(con, f"SELECT * FROM events WHERE seq > {int(after)} AND seq <= {int(hi)} ORDER BY seq",
                      self.analytics_dir / name)
        merged = {"file": name, "min_seq": lo, "max_seq": hi, "rows": sum(p["rows"] for p in small)}
        return parts[:-run] + [merged]

    def _copy_to(self, con, select: str, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        quoted = "'" + str(tmp).replace("'", "''") + "'"
        con.execute(f"COPY ({select}) TO {quoted} (FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, path)  # readers never see a half-written file

    def _collect_garbage(self, manifest: dict) -> None:
        """Delete files the manifest no longer lists (and crashed temp files) once GC_GRACE_S has passed."""
        keep = {self.analytics_dir / p["file"] for p in manifest["events"]}
        for table in ("tasks", "memory"):
            if manifest.get(table):
                keep.add(self.analytics_dir / manifest[table])
        candidates = [*(self.analytics_dir / "events").iterdir(), *(self.analytics_dir / "tasks").iterdir(),
                      *(self.analytics_dir / "memory").iterdir(),
                      *self.analytics_dir.glob(".*.tmp")]
        now = time.time()
        for path in candidates:
            try:
                if path not in keep and now - path.stat().st_mtime > GC_GRACE_S:
                    path.unlink()
            except FileNotFoundError:
                pass


# DuckDB 2 refuses new work on a connection while a result is unfinished: always fetchall().
def _state(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(con.execute("SELECT key, value FROM _sync_state").fetchall())


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class BackgroundSync:
    """Runs sync_once every `interval_s` in a daemon thread until stop(); errors are kept, not fatal."""

    def __init__(self, syncer: Syncer, interval_s: float = 2.0):
        self.syncer, self.interval_s = syncer, interval_s
        self.last: SyncResult | None = None
        self.last_error: str | None = None
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="workbench-duckdb-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.last = self.syncer.sync_once(lock_timeout_s=max(self.interval_s, 5.0))
                self.last_error = None
            except Exception as exc:  # keep syncing: the next round retries from the stored watermark
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("DuckDB sync failed (will retry): %s", self.last_error)
            self.rounds += 1
            self._stop.wait(self.interval_s)

    def stop(self, final_round: bool = True, timeout: float = 60.0) -> None:
        """Stop the loop; by default run one last round so everything flushed so far reaches DuckDB."""
        self._stop.set()
        self._thread.join(timeout)
        if final_round:
            try:
                self.last = self.syncer.sync_once()
            except Exception as exc:  # shutting down: report it, but let the store close anyway
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("final DuckDB sync failed (the next sync catches up): %s", self.last_error)


def start_background_sync(store, interval_s: float = 2.0, **kwargs: Any) -> BackgroundSync:
    return BackgroundSync(Syncer(store, **kwargs), interval_s)
