"""An answer to judge (`Answer`), and what an agent run answered as the agent task set judges it; shared by benchmarks/tasks/_checks.py (the
agents benchmark) and the experiments' checkers, so both judge alike.

    from_agent_result(result)       # a Director run's result -> Answer: the finished subtasks' outputs, the
                                    # last code subtask's files, the last data subtask's SQL and rows
    solution_files(data, language)  # a code subtask's code, less its tests, saved as solution.py / .ts
    compare_rows(expected, rows, shape)   # a data answer's rows against the value the judge's own SQL gives

Data shapes (`expected` is what the judge's SQL returns on the snapshot):
  value  one value; the answer's first row contains it
  top    (label, value) rows, best first; the answer's first row names a label whose value ties the best
  per    (key, value) rows; the answer has a row per key with its key and value, and no other rows except
         ones that say 0 (a key the SQL has no rows for)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

SOLUTION = {"python": "solution.py", "typescript": "solution.ts"}
HELD_OUT = {"python": "test_heldout.py", "typescript": "heldout.test.ts"}
TEST_NAME = {"python": re.compile(r"(^test_.*|_test)\.py$"), "typescript": re.compile(r"\.(test|spec)\.tsx?$")}
SHAPES = ("value", "top", "per")


@dataclass
class Answer:
    """What a mode produced: its text, and for code modes the files or the complete program."""

    text: str
    files: dict[str, str] | None = None
    solution: str | None = None  # HumanEval: the whole program (prompt + candidate) a code mode built
    detail: dict[str, Any] | None = None  # the mode's own record (rounds, samples, ...), kept with the result


def subtasks(result: dict) -> list[dict]:
    return list((result.get("subtasks") or {}).values())


def answer_text(result: dict) -> str:
    """The finished subtasks' outputs (not the Sources list, which echoes the prompt)."""
    return "\n".join(s.get("output") or "" for s in subtasks(result) if s.get("status") == "done")


def code_runs(result: dict) -> list[dict]:
    return [s.get("data") or {} for s in subtasks(result) if s.get("specialist") == "code"]


def data_runs(result: dict) -> list[dict]:
    return [d for d in (s.get("data") or {} for s in subtasks(result) if s.get("specialist") == "data") if d.get("sql")]


def solution_files(data: dict, language: str) -> dict[str, str]:
    """The code a code subtask produced, less every test file, with its main file saved as the name the
    held-out tests import (solution.py / solution.ts)."""
    files = {n: s for n, s in (data.get("files") or {}).items()
             if not TEST_NAME[language].search(PurePosixPath(n).name)}
    code = data.get("code") or ""
    if code.strip():
        files[SOLUTION[language]] = code
    return files


def from_agent_result(result: dict) -> Answer:
    """A Director run's result as the Answer the task set's checkers judge: the text is the finished
    subtasks' outputs, the files the last code subtask's (in its language), the detail the last data
    subtask's SQL and rows (`data`) and the code's language."""
    detail: dict[str, Any] = {}
    files = None
    runs = [d for d in code_runs(result) if (d.get("code") or "").strip()]
    if runs:
        language = (runs[-1].get("language") or "python").lower()
        detail["code_language"] = language
        files = solution_files(runs[-1], language) if language in SOLUTION else None
    data = data_runs(result)
    if data:
        detail["data"] = {"sql": data[-1]["sql"], "rows": data[-1].get("rows") or []}
    return Answer(text=answer_text(result) or result.get("answer") or "", files=files, detail=detail)


def same(a: Any, b: Any) -> bool:
    """Equal as answers: numbers to a relative 1e-3 (an average rounded to 2 places still matches), text
    exactly (trimmed, case kept), a boolean never equals a number."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-3, abs_tol=1e-9)
    if a is None or b is None:
        return a is None and b is None
    return str(a).strip() == str(b).strip()


def number(v: Any) -> Any:
    """Decimal and numeric strings from DuckDB as floats; anything else as is."""
    if isinstance(v, (int, float, bool)) or v is None:
        return v
    try:
        return float(v) if hasattr(v, "as_tuple") else v  # decimal.Decimal
    except (TypeError, ValueError):
        return v


def compare_rows(expected: list[tuple], rows: list[list], shape: str) -> tuple[bool, str]:
    """Whether the answer's rows hold what the judge's SQL returned, by `shape`, and why."""
    expected = [tuple(number(v) for v in row) for row in expected]
    rows = [[number(v) for v in row] for row in rows]
    if not expected or all(v is None for row in expected for v in row):
        ok = not rows or all(v is None for row in rows for v in row)
        return ok, "the log holds nothing to count" + ("" if ok else f"; answered {rows[:2]}")
    if not rows:
        return False, f"the answer has no rows; expected {expected[:3]}"
    if shape == "value":
        want = expected[0][0]
        ok = any(same(v, want) for v in rows[0])
        return ok, f"first row {rows[0]} {'holds' if ok else 'lacks'} {want!r}"[:300]
    if shape == "top":
        best = expected[0][1]
        labels = [r[0] for r in expected if same(r[1], best)]
        ok = any(same(v, label) for v in rows[0] for label in labels)
        return ok, f"first row {rows[0]} {'names' if ok else 'names none of'} {labels}"[:300]
    missing = [(k, want) for k, want in expected
               if not any(any(same(v, k) for v in row) and any(same(v, want) for v in row) for row in rows)]
    # Rows for keys the SQL has none of count only as zeros ("errors per kind" listing a kind with 0).
    extra = [row for row in rows if not any(same(v, k) for v in row for k, _ in expected)
             and not any(same(v, 0) for v in row)]
    if missing or extra or len(rows) < len(expected):
        return False, (f"{len(rows)} rows for {len(expected)} keys; missing or wrong: {missing[:3]}; "
                       f"unexpected: {extra[:2]}")[:300]
    return True, f"all {len(expected)} (key, value) rows match"
