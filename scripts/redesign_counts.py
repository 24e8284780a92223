"""The numbers of docs/redesign.md, for any commit: python scripts/redesign_counts.py [REV ...] (default HEAD).

Per revision, read from git (no checkout): non-blank lines of .py files per top-level package under
workbench/ (a top-level module is its own row) and of dashboards/; the ways to write an event (modules
with SQL adding rows to the Postgres events table, plus modules defining an emit function or looking the
store up in sys.modules to reach one); the span systems (modules defining a ContextVar or a span() context
manager); the modules restating the event columns (tests/test_events.py's check, the applied CREATE TABLE
of migrations.py aside); the import cycles, in the graph tests/test_architecture.py checks.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
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


_GRAPH = ("import grimp, json; g = grimp.build_graph('workbench', 'dashboards', cache_dir=None); "
          "print(json.dumps({m: sorted(g.find_modules_directly_imported_by(m)) for m in g.modules}))")


def import_cycles(rev: str) -> list[list[str]]:
    """Groups of modules that import each other (strongly connected components of more than one module),
    on the revision's files extracted to a temporary directory (grimp reads, it does not import)."""
    with tempfile.TemporaryDirectory() as root:
        archive = subprocess.run(["git", "archive", rev, "workbench", "dashboards"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", root], input=archive.stdout, check=True)
        out = subprocess.run([sys.executable, "-c", _GRAPH], cwd=root, env={**os.environ, "PYTHONPATH": root},
                             check=True, capture_output=True, text=True).stdout
    graph: dict[str, list[str]] = json.loads(out)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            if group:
                groups.append(sorted([v, *group]))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in graph:
        if v not in index:
            visit(v)
    return groups


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
    for rev in revs:
        groups = import_cycles(rev)
        print(f"\n{rev}: import cycles (groups of modules importing each other): {len(groups)} {groups}")


if __name__ == "__main__":
    main(sys.argv[1:] or ["HEAD"])
