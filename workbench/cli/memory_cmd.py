"""`workbench memory`: search, stats, prune, export, import and re-embed the memory (workbench.memory).

Each command opens the store like `workbench db` does (attaching to a running embedded Postgres or starting
it) and needs the embedder; without it, one line says how to install it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from workbench.cli.text import plain
from workbench.errors import WorkbenchError

memory_app = typer.Typer(help="Memory: past tasks' verified solutions, plans and failure notes, searched by meaning.",
                         no_args_is_help=True)
IMPORT_FIELDS = ("kind", "owner", "text", "body")
MAX_IMPORT_BYTES = 200 * 1024 * 1024


class ImportRefused(WorkbenchError):
    exit_code = 2


def register(app: typer.Typer) -> None:
    app.add_typer(memory_app, name="memory")


def _owner(owner: str | None) -> str:
    from workbench.config import get_settings

    return owner or get_settings().memory_owner


class _Opened:
    """The store and its memory for one command; the store is closed (and released) afterwards."""

    def __enter__(self):
        from workbench.memory import get_memory
        from workbench.store import Store

        self.store = Store.open(pool_size=2, writer=False)
        try:
            return get_memory(self.store, required=True)
        except BaseException:
            self.store.close()
            raise

    def __exit__(self, *exc: object) -> None:
        from workbench.memory import forget_instances

        forget_instances()
        self.store.close()


@memory_app.command("search")
def search(
    query: str = typer.Argument(..., help="What to look for, in words (a request, a function, an error); - reads "
                                          "it from standard input."),
    owner: str | None = typer.Option(None, help="Whose memory (default: WORKBENCH_MEMORY_OWNER)."),
    kind: list[str] = typer.Option([], "--kind", help="Only these kinds: task, plan, solution, failure_note."),
    limit: int = typer.Option(5, min=1, max=100, help="Most entries shown."),
    min_similarity: float = typer.Option(0.3, min=0.0, max=1.0, help="Lowest cosine similarity shown."),
    as_json: bool = typer.Option(False, "--json", help="Print the entries as JSON."),
) -> None:
    """The entries most like QUERY that the owner may see, best first (a search here is not counted as a use)."""
    import sys

    from workbench.memory.store import KINDS, check_query

    if query == "-":
        query = sys.stdin.read()
    check_query(query)
    with _Opened() as mem:
        hits = mem.search(query, owner=_owner(owner), kinds=tuple(kind) or KINDS, limit=limit,
                          min_similarity=min_similarity, count_use=False)
    if as_json:
        print(json.dumps([h.as_dict() for h in hits], default=str))
        return
    if not hits:
        Console().print(f"no entry within similarity {min_similarity:.2f}")
        return
    table = Table("similarity", "kind", "score", "uses", "text", "id")
    for h in hits:
        table.add_row(f"{h.similarity:.2f}", h.kind, f"{h.score:.2f}", str(h.uses), plain(" ".join(h.text.split())[:80]),
                      h.id)
    Console().print(table)


@memory_app.command("stats")
def stats(as_json: bool = typer.Option(False, "--json", help="Print the numbers as JSON.")) -> None:
    """How many entries of each kind, owners, uses and outcomes, retired and stale (other model) entries."""
    from dataclasses import asdict

    with _Opened() as mem:
        numbers = mem.stats()
    if as_json:
        print(json.dumps(asdict(numbers)))
        return
    table = Table("", "", box=None, show_header=False)
    for name, value in asdict(numbers).items():
        table.add_row(name, plain(value if not isinstance(value, dict) else ", ".join(f"{k} {v}" for k, v in value.items())))
    Console().print(table)


@memory_app.command("strategies")
def strategies(as_json: bool = typer.Option(False, "--json", help="Print the arms as JSON.")) -> None:
    """Per task kind, which specialist, model and loop settings delivered at what cost (stored subtask
    outcomes; Beta posterior mean and 95 % interval of the success rate). Needs no embedder."""
    from workbench.memory import strategy
    from workbench.store import Store

    store = Store.open(pool_size=2, writer=False)
    try:
        arms = strategy.table(store)
    finally:
        store.close()
    if as_json:
        print(json.dumps([a.as_dict() for a in arms]))
        return
    if not arms:
        Console().print("no finished subtasks yet: run tasks (`workbench run ...`), then look again")
        return
    table = Table("kind", "specialist", "model", "settings", "passed", "mean", "95% interval", "cost $", "tokens",
                  "ms")
    for a in arms:
        low, high = a.interval
        table.add_row(plain(a.kind), plain(a.specialist), plain(a.model or "-"), plain(a.settings),
                      f"{a.successes}/{a.trials}", f"{a.mean:.2f}", f"[{low:.2f}, {high:.2f}]", f"{a.cost_usd:.6f}",
                      f"{a.tokens:.0f}", f"{a.duration_ms:.0f}")
    Console().print(table)


@memory_app.command("prune")
def prune(as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Delete the entries whose score fell below the threshold (they led to failures; never retrieved)."""
    with _Opened() as mem:
        removed = mem.prune()
    if as_json:
        print(json.dumps({"removed": removed}))
        return
    Console().print(f"removed {removed} retired entr{'y' if removed == 1 else 'ies'}")


@memory_app.command("reembed")
def reembed(as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Re-embed the entries an earlier embedding model wrote (search compares one model's vectors only)."""
    with _Opened() as mem:
        done = mem.reembed()
    if as_json:
        print(json.dumps({"reembedded": done, "model": mem.embedder.model_id}))
        return
    Console().print(f"re-embedded {done} entr{'y' if done == 1 else 'ies'} with {mem.embedder.model_id}")


@memory_app.command("export")
def export(file: Path = typer.Argument(..., help="JSON Lines file to write (one entry a line, no vectors)."),
           as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Write every entry to FILE (vectors are left out: an import embeds again, with its own model)."""
    with _Opened() as mem:
        rows = list(mem.rows())
    tmp = file.with_name(file.name + ".part")
    with tmp.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
    tmp.replace(file)
    if as_json:
        print(json.dumps({"exported": len(rows), "file": str(file)}))
        return
    Console().print(f"exported {len(rows)} entries to {plain(file)}")


@memory_app.command("import")
def import_(file: Path = typer.Argument(..., help="JSON Lines file written by `workbench memory export`."),
            as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Add the entries of FILE (near-duplicates merge). Every row is checked first: one bad row imports nothing."""
    entries = read_import(file)
    with _Opened() as mem:
        added = mem.add_many(entries)
    merged = sum(1 for a in added if a.merged)
    if as_json:
        print(json.dumps({"imported": len(added) - merged, "merged": merged}))
        return
    Console().print(f"imported {len(added) - merged} entries, merged {merged} into near-duplicates")


def read_import(file: Path) -> list[Any]:
    """The file's rows as NewEntry, or ImportRefused naming the first row that is not one."""
    from workbench.memory.store import MemoryInputError, NewEntry

    try:
        size = file.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise ImportRefused(f"{file} is {size:,} bytes; an import takes at most {MAX_IMPORT_BYTES:,}: split it.")
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportRefused(f"Cannot read {file}: {exc}. Give a JSON Lines file from `workbench memory export`.") from None
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportRefused(f"{file} row {number}: not JSON ({exc.msg} at column {exc.colno}); nothing was "
                                f"imported. Fix or remove the row and import again.") from None
        if not isinstance(row, dict):
            raise ImportRefused(f"{file} row {number}: a JSON object is expected, not {type(row).__name__}; nothing "
                                f"was imported.")
        missing = [f for f in IMPORT_FIELDS if f not in row]
        if missing:
            raise ImportRefused(f"{file} row {number}: missing {', '.join(missing)}; nothing was imported. Each row "
                                f"needs {', '.join(IMPORT_FIELDS)}.")
        entry = NewEntry(kind=row["kind"], owner=row["owner"], text=row["text"], body=row["body"],
                         language=row.get("language"), scope=row.get("scope") or "owner",
                         source_task_id=row.get("source_task_id"), verified=bool(row.get("verified", False)))
        try:
            entry.check()
            _check_uuid(entry.source_task_id)
        except MemoryInputError as exc:
            raise ImportRefused(f"{file} row {number}: {exc} Nothing was imported.") from None
        entries.append(entry)
    if not entries:
        raise ImportRefused(f"{file} has no entries: nothing to import.")
    return entries


def _check_uuid(value: Any) -> None:
    from workbench.ids import task_id_or_none
    from workbench.memory.store import MemoryInputError

    if value is not None and task_id_or_none(value) is None:
        raise MemoryInputError(f"source_task_id {value!r} is not a task id (a UUID).")
