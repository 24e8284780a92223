"""A finished task's outcome, kept on local disk until its final status is committed.

The body's work (model calls, money) is done before its final status reaches Postgres. When that commit
fails (Postgres restarting, a network blip), the runner saves the outcome here before trying again, so a
rerun of the task (Dask's retry after the worker gave up, `TaskRunner.recover()` after a restart) records
it from this file instead of calling the models again. The file is removed once the status is committed.

Local by design (Postgres is what is unreachable): the workers of one machine share WORKBENCH_HOME; a
rerun on a worker of another machine does not see the file and runs the task again.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

DIR = "task-outcomes"


@dataclass(frozen=True)
class Outcome:
    final: str  # the status the task ends in
    reason: str = ""
    fields: dict[str, Any] = field(default_factory=dict)  # the row's columns: result, error


def path_for(home: Path, task_id: str) -> Path:
    return Path(home) / DIR / f"{uuid.UUID(str(task_id))}.json"  # a UUID: never a path of its own


def save(home: Path, task_id: str, outcome: Outcome) -> Path:
    """Write it atomically and durably (temporary file, fsync, rename, fsync of the directory)."""
    path = path_for(home, task_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    data = orjson.dumps(asdict(outcome), default=str, option=orjson.OPT_NON_STR_KEYS)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def load(home: Path, task_id: str) -> Outcome | None:
    """The saved outcome of an earlier run, or None (none saved, or unreadable: then the task runs again)."""
    try:
        data = orjson.loads(path_for(home, task_id).read_bytes())
        return Outcome(final=data["final"], reason=data.get("reason", ""), fields=dict(data.get("fields") or {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def discard(home: Path, task_id: str) -> None:
    path_for(home, task_id).unlink(missing_ok=True)
