"""EventWriter: events reach Postgres in batches from a background thread, off the caller's hot path.

    writer = EventWriter(conninfo)
    writer.emit("tool_call", task_id=tid, payload={"tool": "search"})   # returns at once, no database I/O
    writer.flush(timeout=30)                                           # returns once all of it is committed

Policies, stated once:

* Batching: the thread takes up to `batch_size` events (or `batch_bytes` of payload) and writes them with one
  binary COPY in one transaction, in emit order (so `seq` follows emit order within one writer).
* Retries: connection-level errors (server restart, terminated backend, network) are retried with back-off for
  `spill_after_s`. When a commit's outcome is unknown, the retry goes through a staging table with
  `ON CONFLICT (event_id) DO NOTHING`: the idempotency key means a batch is never duplicated.
* Spill: a batch Postgres still cannot take after `spill_after_s`, or any batch while the writer is offline
  or closing, is appended to this process's spill file (workbench.store.spill: append-only, one fsync per
  batch; its module docstring states what survives a SIGKILL or a power loss) and counts as done for the
  queue. Offline, the writer probes Postgres every `probe_s`; once it answers, the spill is replayed (by
  event_id, idempotently: exactly once) before new batches. At start and every `replay_every_s` it also
  replays the files of processes that are gone (killed, crashed) and the old `events-unwritten-*.jsonl`.
  Replayed events get later `seq`s than events written meanwhile: seq follows commit order, not emit order.
* Bad rows: a batch refused for its data (not its connection) is retried row by row; rows Postgres still
  refuses go to `<home>/events-rejected.jsonl` with the reason, and `stats()["rejected"]` counts them.
* Back-pressure: the queue holds at most `max_queue` events and `max_queue_bytes` of payload. A full queue
  makes `emit()` wait up to `full_timeout_s` for room; then (and, for `full_timeout_s`, without waiting
  again) the event goes to the spill file from the caller's thread. Only when that file cannot be written
  either does emit() raise EventQueueFull: nothing is dropped silently.
* Flush: `flush()` returns once every event emitted before it is committed to Postgres, spilled ones
  included (so it waits for the replay); while Postgres is away it raises StoreError after its timeout.
* Close: `close()` waits (up to its timeout) until every event is committed or, if Postgres is away,
  spilled; what is still queued or being written when it gives up is spilled too (a batch whose commit
  did happen is then replayed as a no-op). Spilled events are replayed by the next writer on this home.
  close() raises StoreError only if events could not even be spilled.
* Sanitising (policy): secrets are redacted from payloads and error text (keys such as authorization,
  api_key, password; values that look like API keys or bearer tokens; the configured key values).
  Postgres text cannot hold NUL, and invalid UTF-8 (lone surrogates, undecodable bytes) cannot be stored:
  both are replaced by U+FFFD. Bytes are decoded as UTF-8 with the same replacement. Non-finite floats
  (NaN, infinity) become null, integers beyond 64 bits become strings. Large payloads are stored whole;
  above MAX_PAYLOAD_BYTES (what a jsonb value can hold) emit() raises StoreError instead of truncating.
* Transactions with the events: `transact(fn)` runs `fn(conn)` on the writer's connection in the transaction
  that commits every event emitted before the call (and none after), so a task's events and its final
  status commit together with one fsync instead of a flush and then a second commit. If `fn` or that commit
  fails, the transaction is rolled back, the events are written on their own as usual, and the returned
  future holds the error. Jobs may wait (`delay_s`) for a later job to share their commit.
* Speed: payloads are serialised with orjson on the caller's thread (about 1 µs for a typical call record;
  the stdlib json took ten times that and capped the writer below 20,000 events/s on two cores).
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime as dt
import functools
import json
import logging
import math
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import psycopg
from psycopg import pq
from psycopg.adapt import Dumper

from workbench.errors import EventNotKept, StoreError
from workbench.events import COLUMNS, PG_TYPES, Event
from workbench.store.spill import Spill, read_rows

log = logging.getLogger(__name__)

TYPES = PG_TYPES
FIELDS = frozenset(COLUMNS) - {"kind"}
MAX_PAYLOAD_BYTES = 200 * 2**20  # jsonb holds ~255 MB; keep a margin for escaping
REDACTED = "[REDACTED]"
_P = COLUMNS.index("payload")
_UTC = dt.UTC
_COPY_SQL = f"COPY events ({', '.join(COLUMNS)}) FROM STDIN (FORMAT binary)"
_STAGE_SQL = (f"CREATE TEMP TABLE IF NOT EXISTS _events_in (ord integer, "
              f"{', '.join(f'{c} {t}' for c, t in zip(COLUMNS, TYPES))}) ON COMMIT DELETE ROWS")


def insert_sql(rows: str) -> str:
    """`INSERT INTO events (COLUMNS) <rows>`, `rows` a VALUES or SELECT giving COLUMNS in order: the one
    statement that adds events, here and inside a status change's own statement (tasks.service)."""
    return f"INSERT INTO events ({', '.join(COLUMNS)}) {rows}"


_INSERT_ONE_SQL = insert_sql(f"VALUES ({', '.join(f'%s::{t}' for t in TYPES)})")
_IDEMPOTENT_SQL = insert_sql(f"SELECT {', '.join(COLUMNS)} FROM _events_in ORDER BY ord ON CONFLICT (event_id) DO NOTHING")
# Errors where the connection, not the data, failed: retry the same batch (idempotently).
_TRANSIENT = (psycopg.OperationalError, psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected,
              psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled)

# --- sanitising -------------------------------------------------------------------------------------

_SECRET_KEY = re.compile(
    r"^(authorization|proxy[-_]authorization|x[-_]api[-_]key|api[-_]?key|\w*[-_]api[-_]key|password|passwd|"
    r"secret|client[-_]secret|\w*[-_]secret[-_]key|(?:\w+[-_])?token|cookie|set[-_]cookie|private[-_]key)$",
    re.IGNORECASE,
)
_SECRET_VALUE = re.compile(
    r"sk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}|gsk_[A-Za-z0-9]{20,}|(?i:bearer)\s+[A-Za-z0-9._~+/=\-]{8,}"
    r"|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}|xox[abposr]-[A-Za-z0-9\-]{10,}|hf_[A-Za-z0-9]{30,}"
)
_SECRET_KEY_IN_JSON = re.compile(
    rb'"(?:authorization|proxy[-_]authorization|x[-_]api[-_]key|api[-_]?key|\w*[-_]api[-_]key|password|passwd|'
    rb'secret|client[-_]secret|\w*[-_]secret[-_]key|(?:\w+[-_])?token|cookie|set[-_]cookie|private[-_]key)"\s*:',
    re.IGNORECASE,
)
_SECRET_VALUE_BYTES = re.compile(_SECRET_VALUE.pattern.encode())
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# Cheap literal pre-check on the lower-cased JSON; only a hit pays for the precise regexes and the walk.
# (str, not bytes: `in` on str measured twice as fast here.)
_MARKERS = ("sk-", "gsk_", "bearer", "akia", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox", "hf_",
            'authorization"', 'key"', 'password"', 'passwd"', 'secret"', 'token"', 'cookie"')
_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS


def configured_secrets() -> tuple[str, ...]:
    """Secret values from the settings (API keys...): redacted wherever they appear, whatever their shape."""
    from pydantic import SecretStr

    from workbench.config import get_settings

    s = get_settings()
    values = []
    for name in type(s).model_fields:
        v = getattr(s, name)
        if isinstance(v, SecretStr) and len(v.get_secret_value()) >= 8:
            values.append(v.get_secret_value())
    return tuple(values)


def clean_text(s: str, secrets: tuple[str, ...] = (), scrub: bool = True) -> str:
    """NUL and invalid UTF-8 -> U+FFFD, and (scrub=True) secrets -> [REDACTED] (see the module policy)."""
    if "\x00" in s:
        s = s.replace("\x00", "\ufffd")
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates, e.g. from bytes decoded with surrogateescape
            s = _SURROGATE.sub("\ufffd", s)
    if scrub:
        if _SECRET_VALUE.search(s):
            s = _SECRET_VALUE.sub(REDACTED, s)
        for secret in secrets:
            if secret in s:
                s = s.replace(secret, REDACTED)
    return s


def _clean(obj: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(obj, str):
        return clean_text(obj, secrets)
    if isinstance(obj, dict):
        # Only text under a secret-looking key is redacted: {"max_token": 5} or {"token": null} are not secrets.
        return {clean_text(str(k), secrets): (REDACTED if isinstance(v, (str, bytes)) and v and _SECRET_KEY.match(str(k))
                                               else _clean(v, secrets)) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_clean(v, secrets) for v in obj]
    if isinstance(obj, bool) or obj is None:
        return obj
    if isinstance(obj, int):
        return obj if -2**63 <= obj < 2**64 else str(obj)  # JSON numbers beyond 64 bits are kept as text
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return _clean(_json_default(obj), secrets)


def _json_default(obj: Any) -> Any:
    """Types orjson does not know: bytes are decoded (invalid UTF-8 -> U+FFFD), the rest made plain."""
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    if isinstance(obj, (dt.datetime, dt.date, dt.time)):  # reached only from the walk; orjson does these itself
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    return str(obj)


def _needs_walk(data: bytes, secrets: tuple[bytes, ...]) -> bool:
    if b"\\u0000" in data:
        return True
    low = data.decode("utf-8", "replace").lower()
    for marker in _MARKERS:
        if marker in low:
            if _SECRET_VALUE_BYTES.search(data) or _SECRET_KEY_IN_JSON.search(data):
                return True
            break
    for secret in secrets:
        if secret in data:
            return True
    return False


@functools.lru_cache(maxsize=8)
def _as_bytes(secrets: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(s.encode("utf-8", "replace") for s in secrets)


def encode_payload(payload: Any, secrets: tuple[str, ...] = ()) -> bytes:
    """Payload -> UTF-8 JSON Postgres accepts. Fast path: one orjson dump plus cheap scans; the walk when needed."""
    if payload is None:
        return b"{}"
    try:
        data = orjson.dumps(payload, default=_json_default, option=_JSON_OPTIONS)
        walk = _needs_walk(data, _as_bytes(secrets))
    except TypeError:  # lone surrogates, integers beyond 64 bits
        walk = True
    if walk:
        data = orjson.dumps(_clean(payload, secrets), option=_JSON_OPTIONS)
    if len(data) < 65536:
        # orjson's result keeps its ~4 KiB working buffer: copied, a queued event costs ~0.8 KiB instead of ~4.4.
        data = bytes(memoryview(data))
    if len(data) > MAX_PAYLOAD_BYTES:
        raise StoreError(
            f"Event payload is {len(data) / 2**20:.0f} MiB; Postgres jsonb holds at most "
            f"{MAX_PAYLOAD_BYTES // 2**20} MiB here. Save large artifacts as files and log their path instead."
        )
    return data


# --- building one event row -------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _uuid_bytes(value: str, name: str) -> bytes:
    try:
        return uuid.UUID(value).bytes
    except ValueError:
        raise StoreError(f"Event field {name}={value!r} is not a UUID (e.g. {uuid.uuid4()}).") from None


def _uuid(value: Any, name: str) -> bytes | None:
    """UUIDs travel as their 16 bytes (the writer connection dumps bytes as uuid: see _RawUUIDDumper)."""
    if value is None or value == "":
        return None
    if isinstance(value, uuid.UUID):
        return value.bytes
    return _uuid_bytes(str(value), name)


def _count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise StoreError(f"Event field {name}={value!r} must be a whole number of tokens.") from None
    if n < 0 or n > 2**31 - 1:
        raise StoreError(f"Event field {name}={n} is out of range (0 to 2^31-1).")
    return n


def _number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise StoreError(f"Event field {name}={value!r} must be a number.") from None
    return x if math.isfinite(x) else None


def _ts(value: Any) -> dt.datetime:
    if value is None:
        return dt.datetime.now(_UTC)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, _UTC)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=_UTC)  # naive times are taken as UTC
    raise StoreError(f"Event field ts={value!r} must be a datetime or a Unix timestamp.")


def _ident(value: Any) -> str | None:
    """Short identifier fields (ids, agent, model): NUL/UTF-8 policy only."""
    if value is None:
        return None
    s = value if isinstance(value, str) else str(value)
    return s if s.isascii() and "\x00" not in s else clean_text(s, scrub=False)


def _uuid4_bytes() -> bytes:
    """A random (version 4) UUID as 16 bytes, without building a uuid.UUID (a third of emit()'s cost)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return bytes(b)


def event(kind: str, fields: dict[str, Any]) -> Event:
    """An Event from keyword fields, refusing names that are not columns (a typo must not vanish)."""
    if not FIELDS.issuperset(fields):
        unknown = sorted(set(fields) - FIELDS)
        raise TypeError(f"Unknown event field(s) {unknown}; known: {', '.join(sorted(FIELDS))}. "
                        f"Put anything else in payload={{...}}.")
    return Event(kind=kind, **fields)


def build_row(e: Event, secrets: tuple[str, ...] = ()) -> tuple:
    """Validate one event and return its row in COLUMNS order. The trace defaults to the task.

    An event without span_id is a point event inside its parent span (telemetry.span gives spans their ids).
    """
    kind = e.kind
    if not isinstance(kind, str) or not kind.strip() or len(kind) > 64:
        raise StoreError(f"Event kind {kind!r} must be a short non-empty string such as 'llm_call'.")
    return _row(e, secrets)


# A row's cells, from the Event's columns (workbench.events): by each column's Postgres type, or by a rule of
# the column's own. Each cell is (event, column, secrets to redact) -> value.
Cell = Callable[[Event, str, tuple[str, ...]], Any]
_CELL_BY_TYPE: dict[str, Cell] = {
    "uuid": lambda e, c, s: _uuid(getattr(e, c), c),
    "timestamptz": lambda e, c, s: _ts(getattr(e, c)),
    "text": lambda e, c, s: _ident(getattr(e, c)),
    "int4": lambda e, c, s: _count(getattr(e, c), c),
    "float8": lambda e, c, s: _number(getattr(e, c), c),
    "jsonb": lambda e, c, s: encode_payload(getattr(e, c), s),
}
_CELL_OF: dict[str, Cell] = {
    "event_id": lambda e, c, s: _uuid4_bytes() if e.event_id is None else _uuid(e.event_id, c),  # fresh unless given
    "trace_id": lambda e, c, s: _ident(e.trace_id or (str(e.task_id) if e.task_id else None)),  # a task's trace
    "error": lambda e, c, s: None if e.error is None else clean_text(str(e.error), s),  # free text: may quote a secret
}
_CELLS = [(c, _CELL_OF.get(c) or _CELL_BY_TYPE[t]) for c, t in zip(COLUMNS, TYPES)]


def _row(e: Event, secrets: tuple[str, ...]) -> tuple:
    return tuple(cell(e, column, secrets) for column, cell in _CELLS)


def params(e: Event, secrets: tuple[str, ...] = ()) -> list[Any]:
    """One event's row as query parameters in COLUMNS order (uuid objects, the payload as JSON text), for
    SQL that writes an event in the same statement or transaction as other rows."""
    row = list(build_row(e, secrets))
    for i, t in enumerate(TYPES):
        if t == "uuid" and isinstance(row[i], bytes):
            row[i] = uuid.UUID(bytes=row[i])
        elif t == "jsonb":
            row[i] = row[i].decode()
    return row


def insert(conn: psycopg.Connection, e: Event, secrets: tuple[str, ...] = ()) -> None:
    """Write one event inside the caller's transaction: it commits (or rolls back) with the caller's
    other writes. For status changes, whose event must never exist without the status row or lag it."""
    conn.execute(_INSERT_ONE_SQL, params(e, secrets))


def row_as_dict(row: tuple) -> dict[str, Any]:
    out = dict(zip(COLUMNS, row))
    for key in ("event_id", "task_id"):
        if isinstance(out[key], bytes):
            out[key] = str(uuid.UUID(bytes=out[key]))
    out["ts"] = out["ts"].isoformat()
    out["payload"] = orjson.loads(out["payload"])
    return out


class _RawUUIDDumper(Dumper):
    """Binary uuid from the 16 bytes build_row already made (cheaper than a uuid.UUID per event)."""

    format = pq.Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return obj if isinstance(obj, bytes) else obj.bytes


class _RawJsonbDumper(Dumper):
    """Binary jsonb from the UTF-8 JSON encode_payload already made (psycopg's own dumper would re-encode it)."""

    format = pq.Format.BINARY

    def dump(self, obj: Any) -> bytes:
        return b"\x01" + obj


class EventQueueFull(EventNotKept):
    """The queue is full and the spill file cannot be written: this event was refused (the caller is told)."""


@dataclasses.dataclass
class _Job:
    """`fn(conn)` to run in the transaction that commits the first `target` events emitted (see transact)."""

    fn: Callable[[psycopg.Connection], Any]
    target: int
    not_before: float
    future: concurrent.futures.Future = dataclasses.field(default_factory=concurrent.futures.Future)


class EventWriter:
    """Batched, asynchronous, idempotent event writer (one background thread and one connection)."""

    def __init__(self, conninfo: str, *, home: Path | None = None, batch_size: int = 5000,
                 batch_bytes: int = 16 * 2**20, interval_s: float = 0.05, max_queue: int = 100_000,
                 max_queue_bytes: int = 128 * 2**20, full_timeout_s: float = 1.0, spill_after_s: float = 1.0,
                 probe_s: float = 0.5, replay_every_s: float = 30.0):
        self.conninfo = conninfo
        self.home = home
        self.batch_size, self.batch_bytes, self.interval_s = batch_size, batch_bytes, interval_s
        self.max_queue, self.max_queue_bytes, self.full_timeout_s = max_queue, max_queue_bytes, full_timeout_s
        self.spill_after_s, self.probe_s, self.replay_every_s = spill_after_s, probe_s, replay_every_s
        self.secrets = configured_secrets()
        self.spill = Spill(home or Path.cwd())
        self._q: collections.deque[tuple] = collections.deque()
        self._jobs: collections.deque[_Job] = collections.deque()
        self._lock = threading.Lock()  # guards the counters below and the order of appends
        self._enqueued = 0  # events accepted by emit() into the queue
        self._queued_bytes = 0
        self._done = 0  # queued events committed, set aside (rejected) or spilled, in emit order
        self._unreplayed = 0  # events in our spill file, not yet committed
        self._overflow_until = 0.0  # until then a full queue sends events to the spill without waiting
        self._inflight: list[tuple] | None = None  # the batch being written (close() spills it if stuck)
        self._offline = False  # Postgres unreachable: batches go to the spill until a probe succeeds
        self._next_probe = 0.0
        self._next_replay = 0.0  # first round: replay what dead processes left
        self._stats = {"written": 0, "batches": 0, "retries": 0, "rejected": 0, "unwritten": 0, "spilled": 0,
                       "replayed": 0}
        self.last_error: str | None = None
        self._wake = threading.Event()
        self._closing = False
        self._abandon = False
        self._closed = False
        self._crash: BaseException | None = None
        self._conn: psycopg.Connection | None = None
        # Test hook: called with a stage name ("before_commit", "after_commit"); may raise to simulate faults.
        self.failpoint: Callable[[str], None] | None = None
        self._thread = threading.Thread(target=self._run, name="workbench-event-writer", daemon=True)
        self._thread.start()

    # --- producer side (any thread) ----------------------------------------------------------------

    def emit(self, kind: str, **fields: Any) -> None:
        """Queue one event given as columns (see `write`)."""
        self.put(build_row(event(kind, fields), self.secrets))

    def write(self, e: Event) -> None:
        """Queue one event; validates and sanitises it here, never touches the database."""
        self.put(build_row(e, self.secrets))

    def keep(self, e: Event) -> None:
        """Save one event straight to the spill file (a closed writer's last events): the next writer on this
        home replays it. EventQueueFull if the file cannot be written."""
        self._spill_from_caller(build_row(e, self.secrets), "the event writer is closed")

    def put(self, row: tuple) -> None:
        if self._closing or self._closed:
            raise StoreError("The event writer is closed: open the store again (workbench.store.open_store()).")
        if self._crash is not None:
            raise StoreError(f"The event writer stopped after an internal error: {self._crash!r}.")
        size = len(row[_P])
        if self._full(size):
            if time.monotonic() >= self._overflow_until:  # wait for room once; while overflowing, do not
                deadline = time.monotonic() + self.full_timeout_s
                while self._full(size) and time.monotonic() < deadline:
                    self._wake.set()
                    time.sleep(0.001)
            if self._full(size):
                self._overflow_until = time.monotonic() + self.full_timeout_s
                self._spill_from_caller(row, f"the event queue is full ({self._enqueued - self._done} events, "
                                             f"{self._queued_bytes / 2**20:.0f} MiB)")
                return
        with self._lock:
            self._q.append(row)
            self._enqueued += 1
            self._queued_bytes += size
        if len(self._q) >= self.batch_size:
            self._wake.set()

    def _full(self, size: int) -> bool:
        queued = self._enqueued - self._done
        return queued >= self.max_queue or (self._queued_bytes + size > self.max_queue_bytes and queued > 0)

    def _spill_from_caller(self, row: tuple, why: str) -> None:
        try:
            self.spill.append([row])
        except StoreError as exc:
            raise EventQueueFull(
                f"This event was not recorded: {why} and Postgres is not keeping up"
                f"{' (' + self.last_error + ')' if self.last_error else ''}, and the spill file failed: {exc} "
                f"Check `workbench db status`; events are not dropped silently, this one was refused."
            ) from None
        with self._lock:
            self._unreplayed += 1
            self._stats["spilled"] += 1
        self._wake.set()

    def transact(self, fn: Callable[[psycopg.Connection], Any], delay_s: float = 0.0) -> concurrent.futures.Future:
        """Run `fn(conn)` in the writer's transaction that commits every event emitted before this call.

        Returns at once; the future's result is fn's, once committed. On an error in fn or in that commit
        the whole transaction is rolled back, the future holds the error (a failed commit's outcome may be
        unknown: fn must be safe to redo) and the events are written on their own as usual. `delay_s`: the
        job may wait that long for a later job (or events) to share one commit; a later job never waits.
        """
        if self._closing or self._closed:
            raise StoreError("The event writer is closed: open the store again (workbench.store.open_store()).")
        if self._crash is not None:
            raise StoreError(f"The event writer stopped after an internal error: {self._crash!r}.")
        with self._lock:
            job = _Job(fn, self._enqueued, time.monotonic() + delay_s)
            self._jobs.append(job)
        if delay_s <= 0:
            self._wake.set()
        return job.future

    def flush(self, timeout: float = 30.0) -> None:
        """Return once every event emitted before this call is committed (or rejected), spilled ones
        included; else StoreError."""
        target = self._enqueued
        if not self._wait(target, timeout, lambda: self._unreplayed == 0):
            raise StoreError(
                f"{target - self._done + self._unreplayed} event(s) not yet written to Postgres after {timeout:g} s"
                f"{' (last error: ' + self.last_error + ')' if self.last_error else ''}"
                f"{'; the spilled ones are safe in ' + str(self.spill.path) if self._unreplayed else ''}. "
                f"Is the database up? Check `workbench db status`."
            )

    def _wait(self, target: int, timeout: float, also: Callable[[], bool]) -> bool:
        """Wait until the first `target` queued events are done and `also()` holds; False on timeout."""
        self._wake.set()
        deadline = time.monotonic() + timeout
        pause = 0.0005
        while self._done < target or not also():
            if self._crash is not None:
                raise StoreError(f"The event writer stopped after an internal error: {self._crash!r}.")
            if time.monotonic() > deadline:
                return False
            time.sleep(pause)
            pause = min(pause * 2, 0.01)
            self._wake.set()
        return True

    def stats(self) -> dict[str, Any]:
        return {**self._stats, "emitted": self._enqueued + self._stats["spilled"] - self._stats["unwritten"],
                "pending": self._enqueued - self._done + self._unreplayed, "queued_bytes": self._queued_bytes,
                "unreplayed": self._unreplayed, "offline": self._offline, "last_error": self.last_error}

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued (Postgres up) or spill it (Postgres away), stop the thread, close the
        connection. Raises StoreError only if events could be neither written nor spilled."""
        if self._closed:
            return
        self._closing = True
        # Committed, or (Postgres away) spilled: either way nothing waits in memory any more.
        self._wait(self._enqueued, timeout, lambda: self._unreplayed == 0 or self._offline)
        self._abandon = True
        self._wake.set()
        self._thread.join(timeout=10)
        self._closed = True
        self._fail_jobs(StoreError("The event writer closed before this transaction ran."))
        with self._lock:
            left = [self._q.popleft() for _ in range(len(self._q))]
            self._queued_bytes = 0
        if self._thread.is_alive() and self._inflight:  # stuck in a commit: if it lands, the replay is a no-op
            left = list(self._inflight) + left
        try:
            if left:
                self.spill.append(left)
                self._stats["unwritten"] += len(left)
                self._stats["spilled"] += len(left)
                self._unreplayed += len(left)
        except StoreError as exc:
            raise StoreError(f"{len(left)} event(s) could be neither written to Postgres nor saved before "
                             f"closing: {exc}") from None
        finally:
            self.spill.close()
            if self._conn is not None:
                self._conn.close()
        if self._unreplayed:
            log.warning("%d event(s) could not reach Postgres before closing (%s); they are kept in %s and the "
                        "next workbench process that opens this store writes them", self._unreplayed,
                        self.last_error or "no connection", self.spill.path)

    # --- the background thread ---------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                self._wake.wait(self._sleep_s())
                self._wake.clear()
                if not self._abandon:
                    self._recover()
                while (self._q or self._ready_jobs()) and not self._abandon:
                    if self._offline:  # nothing can commit: jobs fail now, events go to the spill
                        self._fail_jobs(StoreError(f"Postgres is unreachable ({self.last_error}); the "
                                                   f"transaction was not run. Check `workbench db status`."))
                        batch = self._take()
                        if batch and not self._spill_batch(batch):
                            break
                        continue
                    jobs = self._ready_jobs()
                    if jobs and jobs[-1].target - self._done <= self.batch_size:
                        self._write_with_jobs(jobs)
                        continue
                    # Events on their own: no job is due, or too many events come before it for one batch.
                    if not self._write(self._take()):
                        break
                if self._abandon or (self._closing and not self._q and (self._unreplayed == 0 or self._offline)):
                    self._fail_jobs(StoreError("The event writer closed before this transaction ran."))
                    return
        except BaseException as exc:  # a bug, not a database fault: surface it to emit()/flush()
            self._crash = exc
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._fail_jobs(StoreError(f"The event writer stopped after an internal error: {exc!r}."))

    def _recover(self) -> None:
        """Offline: probe Postgres when due. Online: replay our spill, and dead processes' files when due."""
        now = time.monotonic()
        if self._offline:
            if now < self._next_probe:
                return
            try:
                self._connection()
            except psycopg.Error as exc:
                self._note(exc)
                self._next_probe = now + self.probe_s
                return
            self._offline = False
            log.info("Postgres answers again: replaying %d spilled event(s)", self._unreplayed)
        if self._unreplayed or now >= self._next_replay:
            self._replay(orphans=now >= self._next_replay)

    def _replay(self, orphans: bool) -> None:
        """Commit our own spilled events (then empty our file), and with `orphans` the files of processes
        that are gone (then remove them). Idempotent by event_id; a connection error stops it: offline."""
        try:
            with self.spill.lock:
                rows = self.spill.take_own()
                self._commit_rows(rows)
                self.spill.clear()
                with self._lock:
                    self._unreplayed = 0
            if not orphans:
                return
            self._next_replay = time.monotonic() + self.replay_every_s
            for path, fd in self.spill.orphans():
                replayed = False
                try:
                    rows, bad = read_rows(path)
                    self._commit_rows(rows)
                    replayed = not bad
                    if bad:  # kept aside for a person to read, never replayed again
                        path.rename(path.with_suffix(".unreadable"))
                    log.info("replayed %d spilled event(s) from %s", len(rows), path)
                finally:
                    self.spill.done(path, fd, replayed)
        except _TRANSIENT as exc:
            self._go_offline(exc)
        except OSError as exc:  # a spill file we cannot read or remove: left for a person, retried later
            log.error("replaying spilled events failed: %s", exc)
            self._next_replay = time.monotonic() + self.replay_every_s

    def _commit_rows(self, rows: list[tuple]) -> None:
        for i in range(0, len(rows), self.batch_size):
            chunk = rows[i:i + self.batch_size]
            self._attempt(chunk, idempotent=True)
            self._stats["replayed"] += len(chunk)

    def _go_offline(self, exc: BaseException) -> None:
        self._note(exc)
        self._drop_connection()
        if not self._offline:
            log.warning("Postgres is unreachable (%s): events go to %s until it answers", self.last_error,
                        self.spill.path)
        self._offline = True
        self._next_probe = time.monotonic() + self.probe_s

    def _note(self, exc: BaseException) -> None:
        self.last_error = f"{type(exc).__name__}: {str(exc).strip()}"

    def _spill_batch(self, batch: list[tuple]) -> bool:
        """Append a batch to our spill file; False (the batch back at the front) if the disk refuses."""
        try:
            self.spill.append(batch)
        except StoreError as exc:
            self.last_error = str(exc)
            with self._lock:
                self._q.extendleft(reversed(batch))
                self._queued_bytes += sum(len(r[_P]) for r in batch)
            self._wake.clear()
            time.sleep(min(self.probe_s, 1.0))  # the disk will not free itself this instant
            return False
        with self._lock:
            self._done += len(batch)
            self._unreplayed += len(batch)
            self._stats["spilled"] += len(batch)
        return True

    def _sleep_s(self) -> float:
        with self._lock:
            if not self._jobs:
                return self.interval_s
            first = min(j.not_before for j in self._jobs)
        return max(0.0, min(self.interval_s, first - time.monotonic()))

    def _ready_jobs(self) -> list[_Job]:
        """Jobs due now, in order: up to the last one whose time has come (earlier ones go with it)."""
        with self._lock:
            now, jobs = time.monotonic(), list(self._jobs)
        due = max((i for i, j in enumerate(jobs) if j.not_before <= now or self._closing), default=-1)
        return jobs[:due + 1]

    def _fail_jobs(self, error: BaseException) -> None:
        with self._lock:
            jobs, self._jobs = list(self._jobs), collections.deque()
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(error)

    def _write_with_jobs(self, jobs: list[_Job]) -> None:
        """The events before each job, then the job, ..., in ONE transaction; on failure, see transact()."""
        taken = self._take(jobs[-1].target - self._done, whole=True)
        rest, done, results = taken, self._done, []
        try:
            conn = self._connection()
            for job in jobs:
                if job.target > done:
                    self._copy(conn, rest[:job.target - done], commit=False)
                    rest, done = rest[job.target - done:], job.target
                results.append(job.fn(conn))
            self._commit(conn)
        except Exception as exc:  # noqa: BLE001 - the error goes to the jobs' callers; the events are kept
            if isinstance(exc, _TRANSIENT):
                self.last_error = f"{type(exc).__name__}: {str(exc).strip()}"
                self._drop_connection()
            else:
                self._rollback()
            with self._lock:  # the events go back to the front, written on their own by the usual path
                self._q.extendleft(reversed(taken))
                self._queued_bytes += sum(len(r[_P]) for r in taken)
                self._jobs = collections.deque(j for j in self._jobs if j not in jobs)
            for job in jobs:
                job.future.set_exception(exc)
            return
        self._stats["written"] += len(taken)
        self._stats["batches"] += 1
        self.last_error = None
        with self._lock:
            self._done += len(taken)
            self._jobs = collections.deque(j for j in self._jobs if j not in jobs)
        for job, result in zip(jobs, results):
            job.future.set_result(result)

    def _take(self, limit: int | None = None, whole: bool = False) -> list[tuple]:
        """Up to `limit` (at most batch_size) events from the front; `whole`: all of them, whatever their bytes."""
        batch: list[tuple] = []
        size = 0
        limit = self.batch_size if limit is None else min(limit, self.batch_size)
        with self._lock:
            while self._q and len(batch) < limit and (whole or not batch or size < self.batch_bytes):
                row = self._q.popleft()
                batch.append(row)
                size += len(row[_P])
            self._queued_bytes -= size
        return batch

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            conn = psycopg.connect(self.conninfo, application_name="workbench-event-writer", connect_timeout=10)
            # Dumpers scoped to this connection: rows carry uuid bytes and ready-made JSON text.
            uuid_oid, jsonb_oid = conn.adapters.types["uuid"].oid, conn.adapters.types["jsonb"].oid
            # cls=None: used only for lookups by oid, i.e. by COPY after set_types(), not for %s parameters.
            conn.adapters.register_dumper(None, type("UUIDBytesDumper", (_RawUUIDDumper,), {"oid": uuid_oid}))
            conn.adapters.register_dumper(None, type("JsonTextDumper", (_RawJsonbDumper,), {"oid": jsonb_oid}))
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # already broken: nothing to release
                pass
        self._conn = None

    def _write(self, batch: list[tuple]) -> bool:
        """Write one batch, retrying connection errors for `spill_after_s` (then, or when closing, spilling
        it). True when it left the queue (committed, set aside or spilled), False if it is back in front."""
        uncertain = False  # after a failure the previous commit may or may not have happened
        pause = 0.05
        give_up = time.monotonic() + self.spill_after_s
        self._inflight = batch
        try:
            while True:
                try:
                    self._attempt(batch, uncertain)
                    with self._lock:
                        self._done += len(batch)
                    return True
                except _TRANSIENT as exc:
                    self._note(exc)
                    self._stats["retries"] += 1
                    self._drop_connection()
                    uncertain = True
                    if self._abandon or self._closing or time.monotonic() + pause > give_up:
                        self._go_offline(exc)
                        return self._spill_batch(batch)
                    time.sleep(pause)
                    pause = min(pause * 2, 1.0)
        finally:
            self._inflight = None

    def _attempt(self, batch: list[tuple], idempotent: bool) -> None:
        """One try at committing a batch (`idempotent`: skipping event_ids already stored). Rows refused for
        their data are set aside; connection errors (_TRANSIENT) are raised for the caller to handle."""
        try:
            conn = self._connection()
            if idempotent:
                self._insert_idempotent(conn, batch)
            else:
                self._copy(conn, batch)
        except psycopg.errors.UniqueViolation:
            # An event_id was emitted twice (e.g. a caller retried with the same id): keep the first.
            self._rollback()
            self._insert_idempotent(self._connection(), batch)
        except _TRANSIENT:
            raise
        except psycopg.Error as exc:  # the data was refused: isolate the bad rows
            self._note(exc)
            self._rollback()
            self._write_one_by_one(batch)
            return
        self._stats["written"] += len(batch)
        self._stats["batches"] += 1
        self.last_error = None

    def _copy(self, conn: psycopg.Connection, batch: list[tuple], commit: bool = True) -> None:
        with conn.cursor() as cur, cur.copy(_COPY_SQL) as copy:
            copy.set_types(TYPES)
            for row in batch:
                copy.write_row(row)
        if commit:
            self._commit(conn)

    def _insert_idempotent(self, conn: psycopg.Connection, batch: list[tuple]) -> None:
        with conn.cursor() as cur:
            cur.execute(_STAGE_SQL)
            with cur.copy(f"COPY _events_in (ord, {', '.join(COLUMNS)}) FROM STDIN (FORMAT binary)") as copy:
                copy.set_types(("int4",) + TYPES)
                for i, row in enumerate(batch):
                    copy.write_row((i, *row))
            cur.execute(_IDEMPOTENT_SQL)
        self._commit(conn)

    def _commit(self, conn: psycopg.Connection) -> None:
        if self.failpoint:
            self.failpoint("before_commit")
        conn.commit()
        if self.failpoint:
            self.failpoint("after_commit")

    def _rollback(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rollback()
        except psycopg.Error:
            self._drop_connection()

    def _write_one_by_one(self, batch: list[tuple]) -> None:
        """Each row on its own (idempotently): the ones Postgres refuses go to events-rejected.jsonl. A
        connection error is raised: the caller retries or spills the whole batch (rows done are no-ops then)."""
        bad: list[tuple[tuple, str]] = []
        for row in batch:
            try:
                self._insert_idempotent(self._connection(), [row])
                self._stats["written"] += 1
            except _TRANSIENT:
                raise
            except psycopg.Error as exc:
                self._rollback()
                bad.append((row, f"{type(exc).__name__}: {str(exc).strip()}"))
        if bad:
            self._stats["rejected"] += len(bad)
            for row, reason in bad:
                self._dead_letter([row], reason, "events-rejected")

    def _dead_letter(self, rows: list[tuple], reason: str, name: str) -> Path:
        home = self.home or Path.cwd()
        home.mkdir(parents=True, exist_ok=True)
        path = home / f"{name}.jsonl"
        with path.open("a", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps({"reason": reason, "event": row_as_dict(row)}, ensure_ascii=False) + "\n")
        return path
