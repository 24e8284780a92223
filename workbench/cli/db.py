"""`workbench db`: migrate, status and sync the execution store.

Each command attaches to the embedded Postgres if it is running (e.g. under `workbench serve`) or starts it,
and releases it when done (stopping it only if this command started it and nobody else holds it).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Self

import typer
from rich.console import Console
from rich.table import Table

from workbench.cli.params import finite
from workbench.cli.text import plain

db_app = typer.Typer(help="The execution store: Postgres (system of record) and its DuckDB analytics copy.",
                     no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


def _open(migrate: bool):
    from workbench.store import Store

    return Store.open(migrate=migrate, pool_size=2, writer=False)


@db_app.command("migrate")
def migrate(as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Apply pending schema migrations (they are also applied whenever the store opens)."""
    store = _open(migrate=False)
    try:
        ran = store.migrate()
        state = store.migration_status()
    finally:
        store.close()
    if as_json:
        print(json.dumps({"applied_now": ran, **state}))
        return
    if ran:
        Console().print(f"applied {len(ran)} migration(s): {', '.join(ran)}", markup=False)
    else:
        Console().print(f"up to date: {len(state['applied'])} migrations applied, none pending")


@db_app.command("status")
def status(as_json: bool = typer.Option(False, "--json", help="Print the status as JSON.")) -> None:
    """Where the server is, applied/pending migrations, row counts, the DuckDB copy and Parquet snapshot."""
    from workbench.store import analytics

    store = _open(migrate=False)
    try:
        info = store.server_info()
        state = store.migration_status()
        counts = store.counts() if not state["pending"] else {}
        home = store.home
    finally:
        store.close()
    snapshot = analytics.snapshot_info(home)
    duck = home / "workbench.duckdb"
    out = {
        "server": info,
        "migrations": state,
        "counts": counts,
        "duckdb": {"path": str(duck), "exists": duck.exists(), "bytes": duck.stat().st_size if duck.exists() else 0},
        "analytics": None if snapshot is None else {
            "dir": str(analytics.analytics_dir(home)), "published_at": snapshot.get("published_at"),
            "events_watermark": snapshot.get("events_watermark"), "parts": len(snapshot["events"])},
    }
    if as_json:
        print(json.dumps(out, default=str))
        return
    table = Table("", "", box=None, show_header=False)
    how = "started for this command" if info.get("started_by_this_process") else "running"
    table.add_row("server", plain(f"{info['where']} · Postgres {info['version']} · {how}"))
    table.add_row("migrations", plain(f"{len(state['applied'])} applied, {len(state['pending'])} pending"
                  + (f" ({', '.join(state['pending'])})" if state["pending"] else "")))
    if counts:
        table.add_row("rows", f"tasks {counts['tasks']:,} · events {counts['events']:,} (max seq {counts['max_seq']:,})")
    table.add_row("duckdb", plain(f"{duck} ({out['duckdb']['bytes'] / 2**20:.1f} MiB)" if duck.exists()
                                  else f"{duck} (not synced yet)"))
    if snapshot:
        table.add_row("analytics", plain(f"{analytics.analytics_dir(home)} · published {snapshot.get('published_at')} · "
                                         f"watermark {snapshot.get('events_watermark')} · {len(snapshot['events'])} part(s)"))
    Console().print(table)
    if state["pending"]:
        Console().print("[yellow]pending migrations:[/] run `workbench db migrate`")


class _CtrlC:
    """Remembers a SIGINT and raises KeyboardInterrupt as usual. DuckDB consumes a KeyboardInterrupt that
    arrives inside a query and raises its own error instead, not always of one type ("Query interrupted"
    is not an InterruptException): the flag tells --watch to stop whatever the error says."""

    def __init__(self) -> None:
        self.seen = False
        self.previous = None

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            self.previous = signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _on_sigint(self, signum: int, frame: object) -> None:
        self.seen = True
        raise KeyboardInterrupt


def _interrupted(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is DuckDB's answer to a SIGINT: it consumes the KeyboardInterrupt."""
    import duckdb

    for _ in range(10):  # the chain of causes, not following a cycle forever
        if exc is None:
            return False
        if isinstance(exc, duckdb.InterruptException):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


@db_app.command("sync")
def sync(
    watch: bool = typer.Option(False, "--watch", help="Keep syncing every --interval seconds until Ctrl-C."),
    interval: float = typer.Option(2.0, "--interval", min=0.1, callback=finite, help="Seconds between rounds with --watch."),
    as_json: bool = typer.Option(False, "--json", help="Print each round as a JSON line."),
) -> None:
    """Copy new events (and changed tasks) from Postgres into DuckDB, exactly once; publish Parquet."""
    from workbench.store import Store
    from workbench.store.sync import Syncer

    store = Store.open(pool_size=2, writer=False)
    try:
        with _CtrlC() as ctrl_c:
            syncer = Syncer(store)
            rounds = 0
            while True:
                try:
                    result = syncer.sync_once()
                except Exception as exc:  # --watch keeps going: the next round resumes from the stored watermark
                    if ctrl_c.seen or _interrupted(exc):  # Ctrl-C inside a DuckDB query arrives as DuckDB's error
                        raise KeyboardInterrupt from None
                    if not watch:
                        raise
                    Console(stderr=True).print(f"[red]sync failed, retrying:[/] {plain(exc)}", highlight=False)
                    time.sleep(interval)
                    continue
                changed = result.events_copied or result.tasks_copied or result.tasks_deleted or result.rebuilt
                if changed or rounds == 0:  # with --watch, quiet rounds print nothing
                    _print_round(result, as_json)
                rounds += 1
                if not watch:
                    return
                time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


def _print_round(result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.as_dict()), flush=True)
        return
    Console().print(
        f"copied {result.events_copied:,} events and {result.tasks_copied:,} tasks"
        f"{f' (removed {result.tasks_deleted:,})' if result.tasks_deleted else ''} in "
        f"{result.duration_s:.2f} s · events watermark {result.events_watermark:,} · "
        f"{'published' if result.published else 'snapshot unchanged'} ({result.parquet_parts} part(s))"
        f"{' · rebuilt the copy' if result.rebuilt else ''}", highlight=False)
