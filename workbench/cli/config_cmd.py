"""`workbench config`: the effective settings, secrets masked."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from workbench.config import get_settings


def register(app: typer.Typer) -> None:
    @app.command("config")
    def config(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
        """Print the effective settings (from WORKBENCH_* variables and .env), secrets masked."""
        values = get_settings().masked()
        if as_json:
            print(json.dumps(values, indent=2, default=str))
            return
        table = Table("setting", "variable", "value", box=None)
        for name, value in values.items():
            table.add_row(name, f"WORKBENCH_{name.upper()}", Text("" if value is None else str(value)))
        Console().print(table)
