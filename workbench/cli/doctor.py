"""`workbench doctor`: check every component, with timings; one fix-it line per failure and per
unavailable optional component (the sandbox's runtimes, the browser). Only failures make it exit 1."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from workbench import doctor as checks

STATUS_STYLE = {"ok": "[green]ok[/]", "fail": "[red]FAIL[/]", "skip": "[dim]skip[/]",
                "unavailable": "[yellow]unavailable[/]"}


def register(app: typer.Typer) -> None:
    @app.command()
    def doctor(
        as_json: bool = typer.Option(False, "--json", help="Print results as JSON."),
        quick: bool = typer.Option(False, "--quick", help="Skip checks that load a model or start processes."),
        model: str = typer.Option(None, "--model", "-m", help="Check this model instead of the default."),
    ) -> None:
        """Check the local model, weights, providers, Postgres, DuckDB, Dask, the sandbox and its Python,
        TypeScript and Java runtimes, Chromium and disk. Exits 1 only on a failure: a missing optional
        component (the sandbox, a runtime, the browser) is "unavailable", with the command that installs it."""
        if model:
            import os

            from workbench.config import reload_settings

            os.environ["WORKBENCH_MODEL"] = model
            reload_settings()
        results = checks.run_all(include_heavy=not quick)
        failed = [r for r in results if not r.ok]
        missing = [r for r in results if r.status == "unavailable"]
        if as_json:
            print(json.dumps({"ok": not failed, "unavailable": [r.name for r in missing],
                              "checks": [r.as_dict() for r in results]}, indent=2))
        else:
            table = Table("check", "status", "ms", "detail", box=None)
            for r in results:
                # Details quote program output and paths: print them as text, never as rich markup.
                table.add_row(r.name, STATUS_STYLE.get(r.status, escape(r.status)), f"{r.duration_ms:.0f}",
                              Text(r.detail))
            console = Console()
            console.print(table)
            for r in failed:
                console.print(f"[red]✗ {escape(r.name)}:[/] {escape(r.fix)}", soft_wrap=True)
            for r in missing:
                console.print(f"[yellow]– {escape(r.name)} is unavailable (optional); install it:[/] {escape(r.fix)}",
                              soft_wrap=True)  # a command wrapped at the terminal's width cannot be pasted
        if failed:
            raise typer.Exit(1)
