"""The event writer's local spill: events that cannot reach Postgres now wait in an append-only file.

    spill = Spill(home)                  # <home>/events-spill/<pid>-<random>.jsonl, created on first append
    spill.append(rows)                   # one write and one fsync for the whole list
    for path in spill.orphans(): ...     # other processes' files whose process is gone, and old dead letters
    rows = read_rows(path)               # replay them (ON CONFLICT (event_id) DO NOTHING), then remove

Durability, the trade-off: `append` fsyncs once per call, and the writer calls it once per batch (up to
its batch_size events), so a batch costs one disk flush, not one per event. An event is safe from a
SIGKILL or an OOM kill once `append` returned (the kernel holds the written bytes even before fsync) and
safe from a power loss or kernel crash once its fsync returned. Events still in the writer's in-memory
queue (not yet taken into a batch, normally under `interval_s` of them) are lost with the process: keeping
every event on disk before emit() returns would cost an fsync per event, slower than Postgres itself.

A line is `{"event": {column: value}}` (payload as JSON, uuids as text, ts as ISO 8601), the format of the
older dead-letter files (`events-unwritten-<pid>.jsonl`), which are replayed the same way. A process holds
an exclusive flock on its own file while it lives: the lock goes with the process however it dies, so
another process can tell a file it may replay (lock free) from one still being written (lock held), even
after the pid was reused. Replays are idempotent by event_id, so a file replayed twice (a replayer killed
before removing it) adds nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from workbench.errors import StoreError
from workbench.events import COLUMNS, PG_TYPES

log = logging.getLogger(__name__)
SPILL_DIR = "events-spill"
LEGACY_GLOB = "events-unwritten-*.jsonl"  # what close() saved before the spill existed
_P = COLUMNS.index("payload")


def encode(row: tuple) -> bytes:
    """One row (COLUMNS order, as the writer builds it) as one line of JSON, newline included."""
    out: dict[str, Any] = {}
    for column, pg_type, value in zip(COLUMNS, PG_TYPES, row):
        if value is None:
            out[column] = None
        elif pg_type == "uuid":
            out[column] = str(uuid.UUID(bytes=value)) if isinstance(value, bytes) else str(value)
        elif pg_type == "jsonb":
            out[column] = orjson.Fragment(value)  # already JSON: written as is, not parsed again
        else:
            out[column] = value  # orjson writes datetimes as ISO 8601
    return orjson.dumps({"event": out}) + b"\n"


def decode(line: bytes | str) -> tuple:
    """A line of `encode` (or of an old dead-letter file) back to a row the writer can COPY."""
    fields = orjson.loads(line)["event"]
    row = []
    for column, pg_type in zip(COLUMNS, PG_TYPES):
        value = fields.get(column)
        if value is not None:
            if pg_type == "uuid":
                value = uuid.UUID(str(value)).bytes
            elif pg_type == "timestamptz":
                value = dt.datetime.fromisoformat(value)
            elif pg_type == "jsonb":
                value = orjson.dumps(value)
        elif pg_type == "jsonb":
            value = b"{}"
        row.append(value)
    return tuple(row)


def read_rows(path: Path) -> tuple[list[tuple], int]:
    """The rows in a spill file and how many lines were unreadable. A last line without its newline is a
    write the process did not finish (killed mid-append): it was never reported written, so it is skipped."""
    data = path.read_bytes()
    lines = data.split(b"\n")
    if lines and lines[-1]:
        log.warning("%s: skipping an unfinished last line (%d bytes)", path, len(lines[-1]))
    rows, bad = [], 0
    for line in lines[:-1]:
        if not line.strip():
            continue
        try:
            rows.append(decode(line))
        except (ValueError, KeyError, TypeError) as exc:
            bad += 1
            log.error("%s: unreadable spilled event (%s): %.200r", path, exc, line)
    return rows, bad


class Spill:
    """This process's spill file in `home`, and the files of processes that are gone."""

    def __init__(self, home: Path):
        self.dir = Path(home) / SPILL_DIR
        self.home = Path(home)
        self.path = self.dir / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        self.lock = threading.Lock()  # one appender at a time; a replay of our own file holds it too
        self._fd: int | None = None
        self._pid = os.getpid()

    def append(self, rows: list[tuple]) -> None:
        """Write `rows` at the end of this process's file and fsync it; StoreError if the disk refuses."""
        if not rows:
            return
        data = b"".join(encode(r) for r in rows)
        with self.lock:
            try:
                fd = self._open()
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            except OSError as exc:
                raise StoreError(
                    f"Cannot save {len(rows)} event(s) to the spill file {self.path} while Postgres is unreachable "
                    f"({exc}). Free disk space there or point WORKBENCH_HOME at a writable disk, and check "
                    f"`workbench db status`."
                ) from None

    def has_rows(self) -> bool:
        try:
            return self.path.stat().st_size > 0
        except OSError:  # none yet, or its directory cannot exist (append says why)
            return False

    def take_own(self) -> list[tuple]:
        """Our own file's rows (call with `self.lock` held, and `clear()` once they are committed)."""
        if not self.has_rows():
            return []
        rows, _bad = read_rows(self.path)
        return rows

    def clear(self) -> None:
        """Empty our own file (with `self.lock` held): everything in it is committed."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)

    def orphans(self) -> Iterator[tuple[Path, int]]:
        """Files of processes that are gone, each as (path, fd holding its lock): replay it, then `done()`.

        Includes the old dead-letter files. A file whose lock is held belongs to a live process: skipped."""
        paths = sorted(self.dir.glob("*.jsonl")) if self.dir.is_dir() else []
        paths += sorted(self.home.glob(LEGACY_GLOB))
        for path in paths:
            if path == self.path:
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:  # another process replayed and removed it meanwhile
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if os.fstat(fd).st_nlink == 0:  # removed between our open and our lock: already replayed
                os.close(fd)
                continue
            yield path, fd

    @staticmethod
    def done(path: Path, fd: int, replayed: bool) -> None:
        """Remove an orphan once its rows are committed; either way release its lock."""
        try:
            if replayed:
                path.unlink(missing_ok=True)
        finally:
            os.close(fd)

    def close(self) -> None:
        """Close our file; removed when empty, kept (for the next start to replay) when not."""
        with self.lock:
            if self._fd is None:
                return
            empty = os.fstat(self._fd).st_size == 0
            if empty:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def _open(self) -> int:
        if self._pid != os.getpid():  # a forked child writes a file of its own
            self.path, self._fd, self._pid = self.dir / f"{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl", None, os.getpid()
        if self._fd is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh name: nobody else holds it
            self._fd = fd
        return self._fd
