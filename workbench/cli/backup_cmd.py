"""`workbench backup` and `workbench restore`: the store (Postgres dump), the DuckDB analytics copy and the
configuration files in one .tar.gz, and back (see workbench.store.backup)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console

from workbench.cli.text import plain


def register(app: typer.Typer) -> None:
    @app.command("backup")
    def backup_command(
        path: Path = typer.Argument(None, help="Where to write the .tar.gz (default: "
                                               "<WORKBENCH_HOME>/backups/workbench-<UTC time>.tar.gz); never overwritten."),
        as_json: bool = typer.Option(False, "--json", help="Print the backup's manifest as JSON."),
    ) -> None:
        """Back up the store: a Postgres dump, the DuckDB analytics file and the configuration files (no secrets).
        Works while `workbench serve` runs."""
        from workbench.store import Store, backup

        store = Store.open(pool_size=2, writer=False)
        try:
            info = backup.backup(store, path)
        finally:
            store.close()
        if as_json:
            print(json.dumps(asdict(info)))
            return
        rows = ", ".join(f"{t} {n:,}" for t, n in info.counts.items() if not t.startswith("_"))
        Console().print(plain(f"wrote {info.path}\n  rows: {rows}\n  analytics: {info.analytics}\n  "
                              f"config: {', '.join(info.config.values()) or 'none set'}"), highlight=False)

    @app.command("restore")
    def restore_command(
        path: Path = typer.Argument(..., help="A .tar.gz written by `workbench backup`."),
        force: bool = typer.Option(False, "--force", help="Replace a store that already holds data."),
        as_json: bool = typer.Option(False, "--json", help="Print the restored backup's manifest as JSON."),
    ) -> None:
        """Restore a backup into this WORKBENCH_HOME's store (or WORKBENCH_POSTGRES_URL). Refuses a store that
        holds data unless --force; stop `workbench serve` first."""
        from workbench.store import Store, backup

        store = Store.open(pool_size=1, writer=False)
        try:
            info = backup.restore(store, path, force=force)
            counts = backup.table_counts(store)
        finally:
            store.close()
        if as_json:
            print(json.dumps({**asdict(info), "restored_counts": counts}))
            return
        rows = ", ".join(f"{t} {n:,}" for t, n in counts.items() if not t.startswith("_"))
        Console().print(plain(f"restored {path} (made {info.created_at})\n  rows: {rows}\n  analytics: "
                              f"{info.analytics}"), highlight=False)
