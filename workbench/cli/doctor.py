"""`workbench doctor`: check every component, with timings; one fix-it line per failure."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from workbench import doctor as checks

STATUS_STYLE = {"ok": "[green]ok[/]", "fail": "[red]FAIL[/]", "skip": "[dim]skip[/]"}


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(
        as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
        quick: bool = typer.Option(False, "--quick", help="Skip checks that load a model or start processes."),
        model: str = typer.Option(None, "--model", "-m", help="Check this model instead of the default."),
    ) -> None:
        """Check the local model, weights, providers, Postgres, DuckDB, Dask, sandbox, Chromium and disk."""
        if model:
            import os

            from workbench.config import reload_settings

            os.environ["WORKBENCH_MODEL"] = model
            reload_settings()
        results = checks.run_all(include_heavy=not quick)
        failed = [r for r in results if not r.ok]
        if as_json:
            print(json.dumps({"ok": not failed, "checks": [r.as_dict() for r in results]}, indent=2))
        else:
            table = Table("check", "status", "ms", "detail", box=None)
            for r in results:
                table.add_row(r.name, STATUS_STYLE[r.status], f"{r.duration_ms:.0f}", r.detail)
            console = Console()
            console.print(table)
            for r in failed:
                console.print(f"[red]✗ {r.name}:[/] {r.fix}")
        if failed:
            raise typer.Exit(1)
