"""The checkers the task files share: each file is PROMPT, KIND and `check = <one of these>(...)`.

They judge the finished task row by structure and behaviour, never by exact wording.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Check = Callable[[dict], tuple[bool, str]]


def _subtasks(task: dict) -> list[dict]:
    return list(((task.get("result") or {}).get("subtasks") or {}).values())


def mentions(pattern: str) -> Check:
    """General: completed, and a finished subtask's output matches `pattern` (not the Sources list,
    which echoes the prompt)."""
    terms = re.compile(pattern, re.IGNORECASE)

    def check(task: dict) -> tuple[bool, str]:
        if task.get("status") != "completed":
            return False, f"status {task.get('status')}: {task.get('error')}"
        answer = "\n".join(s.get("output") or "" for s in _subtasks(task) if s.get("status") == "done")
        if not answer.strip():
            return False, "no finished subtask / empty answer"
        if not terms.search(answer):
            return False, f"answer matches none of /{terms.pattern}/"
        return True, f"answer {len(answer)} chars, mentions a key term"

    return check


def code_defines(pattern: str, what: str) -> Check:
    """Code: a code subtask ran its tests in the sandbox, at least one passes, and its code defines `what`."""
    defines = re.compile(pattern)

    def check(task: dict) -> tuple[bool, str]:
        runs = [s.get("data") or {} for s in _subtasks(task) if s.get("specialist") == "code"]
        if not runs:
            return False, "no code subtask"
        for d in runs:
            if d.get("executed") and (d.get("tests_passed") or 0) >= 1 and defines.search(d.get("code") or ""):
                return True, f"{d['tests_passed']}/{d.get('tests_run')} tests pass in {d.get('rounds')} round(s)"
        d = runs[-1]
        return False, (f"executed={d.get('executed')}, tests {d.get('tests_passed')}/{d.get('tests_run')}, "
                       f"defines {what}: {bool(defines.search(d.get('code') or ''))}")

    return check


def data_rows() -> Check:
    """Data: a data subtask answered with SQL and at least one non-null value."""

    def check(task: dict) -> tuple[bool, str]:
        runs = [s for s in _subtasks(task) if s.get("specialist") == "data"]
        if not runs:
            return False, "no data subtask"
        for s in runs:
            d = s.get("data") or {}
            if d.get("sql") and any(v is not None for row in d.get("rows") or [] for v in row):
                return True, f"{len(d['rows'])} row(s), first {d['rows'][0]}"[:120]
        s = runs[-1]
        return False, f"no SQL with non-null rows ({s.get('status')}: {s.get('error')})"[:200]

    return check
