"""Shared by benchmark scripts: machine description, JSON results, a printed table."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict:
    import psutil

    return {"cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version(), "gpu": None}


def code_version() -> str:
    """The commit the benchmark runs (with "+changes" when the work tree differs): rows of a long run that
    spans sessions say which code produced them."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                "workbench"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+changes" if dirty else "")


def save(name: str, rows: list[dict], **extra) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                "machine": machine(), "rows": rows, **extra}, indent=1))
    return path


def table(rows: list[dict], columns: list[str]) -> str:
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns), "  ".join("-" * widths[c] for c in columns)]
    lines += ["  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns) for r in rows]
    return "\n".join(lines)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return "" if v is None else str(v)


def last_rows(jsonl: Path, *key_fields: str) -> dict[tuple, dict]:
    """The last line of each key (the values of `key_fields`) in a per-case results file; a line cut off
    by a crash, or one without those fields, is skipped (that case runs again on --resume)."""
    rows: dict[tuple, dict] = {}
    if jsonl.exists():
        for line in jsonl.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and all(f in row for f in key_fields):
                rows[tuple(row[f] for f in key_fields)] = row
    return rows


def append_row(jsonl: Path, row: dict) -> None:
    """One case's row, on disk before the next case starts (a run resumes from the file)."""
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    with jsonl.open("a") as f:
        f.write(json.dumps(row, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


@dataclass
class AgentsStack:
    """What a benchmark that runs agents tasks works with; `sync` may be replaced while it runs (a paused
    sync is restarted as a new one), and the one here at the end is the one stopped."""

    store: Any
    service: Any
    runner: Any
    sync: Any
    home: Path


@contextlib.contextmanager
def agents_stack(home: Path) -> Iterator[AgentsStack]:
    """The stack the server uses, in `home` (already WORKBENCH_HOME, settings reloaded): the embedded
    Postgres, the LocalCluster with every worker up, the background DuckDB sync and a TaskRunner. Tasks a
    crashed earlier run left running are marked failed first. On exit the workers stop first (they hold store
    connections), then the sync, then Postgres; the home is deleted only when the block finished, so an
    interrupted run resumes in it (the caller says so)."""
    from workbench import cluster
    from workbench.config import get_settings
    from workbench.store import close_store, open_store
    from workbench.store import postgres as embedded
    from workbench.store.sync import start_background_sync
    from workbench.tasks.runner import TaskRunner
    from workbench.tasks.service import TaskService

    stack, finished = None, False
    try:
        store = open_store()
        service = TaskService(store)
        for stale in service.stale():  # left running by the crashed run this one resumes
            service.transition(stale["id"], "failed", reason="benchmark interrupted",
                               error="the benchmark run stopped while this task ran")
        client = cluster.get_client()
        client.wait_for_workers(get_settings().dask_workers, timeout=120)
        stack = AgentsStack(store, service, None, start_background_sync(store), home)
        stack.runner = TaskRunner(client, service)
        yield stack
        finished = True
    finally:
        cluster.close_client()
        if stack is not None and stack.sync is not None:
            stack.sync.stop(final_round=False)
        close_store()
        embedded.stop(home / "postgres")
        if finished:
            shutil.rmtree(home, ignore_errors=True)
