"""The numbers of docs/redesign.md, for any commit: python scripts/redesign_counts.py [REV ...] (default HEAD).

Per revision, read from git (no checkout): non-blank lines of .py files per top-level package under
workbench/ (a top-level module is its own row) and of dashboards/; the ways to write an event (modules
with SQL adding rows to the Postgres events table, plus modules defining an emit function or looking the
store up in sys.modules to reach one); the span systems (modules defining a ContextVar or a span() context
manager); the modules restating the event columns (tests/test_events.py's check, the applied CREATE TABLE
of migrations.py aside). Import cycles need the code importable, so they are counted for the working tree
only, with the graph tests/test_architecture.py checks.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

# store/sync.py's INSERT fills DuckDB's analytics copy from Postgres: a reader of events, not a writer.
WRITES = re.compile(r"INSERT INTO events \(|COPY events|^ *def emit(_event)?\((self, )?kind|"
                    r"sys\.modules\.get\(.workbench\.store", re.MULTILINE)
SPANS = re.compile(r"ContextVar\(|^def span\(|^    def span\(", re.MULTILINE)


def git(*args: str) -> str:
    return subprocess.run(["git", *args], check=True, capture_output=True, text=True).stdout


def sources(rev: str) -> dict[str, str]:
    names = [n for n in git("ls-tree", "-r", "--name-only", rev, "--", "workbench", "dashboards").split()
             if n.endswith(".py")]
    return {n: git("show", f"{rev}:{n}") for n in names}


def package(path: str) -> str:
    parts = path.split("/")
    if parts[0] == "dashboards":
        return "dashboards"
    return "/".join(parts[:2]) if len(parts) > 2 else path


def counts(rev: str) -> tuple[Counter, list[str], list[str], list[str]]:
    sys.path[:0] = ["tests", "."]
    from test_events import restatements

    files = sources(rev)
    lines = Counter()
    for path, text in files.items():
        lines[package(path)] += sum(1 for line in text.splitlines() if line.strip())
    writers = sorted(p for p, t in files.items() if WRITES.search(t) and not p.endswith(("migrations.py", "sync.py")))
    spans = sorted(p for p, t in files.items() if SPANS.search(t))
    columns = sorted({hit.split(":")[0] for p, t in files.items() for hit in restatements(p, t)}
                     - {"workbench/store/migrations.py"})
    return lines, writers, spans, columns


def import_cycles() -> list[str] | None:
    from graphlib import CycleError, TopologicalSorter

    import grimp

    graph = grimp.build_graph("workbench", "dashboards", cache_dir=None)
    try:
        TopologicalSorter({m: graph.find_modules_directly_imported_by(m) for m in graph.modules}).prepare()
    except CycleError as exc:
        return list(reversed(exc.args[1]))
    return None


def main(revs: list[str]) -> None:
    results = {rev: counts(rev) for rev in revs}
    rows = sorted(set().union(*(r[0] for r in results.values())))
    print("| package | " + " | ".join(revs) + " |")
    print("|---|" + "---:|" * len(revs))
    for row in rows:
        print(f"| {row} | " + " | ".join(str(results[r][0].get(row, 0)) for r in revs) + " |")
    print("| **total** | " + " | ".join(str(sum(results[r][0].values())) for r in revs) + " |")
    for rev in revs:
        _, writers, spans, columns = results[rev]
        print(f"\n{rev}: ways to write an event (modules): {len(writers)} {writers}")
        print(f"{rev}: span systems (ContextVar or span()): {len(spans)} {spans}")
        print(f"{rev}: modules restating the event columns: {len(columns)} {columns}")
    found = import_cycles()
    print(f"\nworking tree: import cycles: {0 if found is None else ' -> '.join(found)}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["HEAD"])
