"""A model-written test file made fit to run: cut back when it ran out of tokens, skeleton
placeholders dropped, at most `max_tests` of the model's tests, one check per test
(`code.splitting`), and the task's own examples always in.

    source, notes, left = tidy_tests(task, written)   # left: placeholders still in it (refuse it)

Small models copy the prompt's skeleton, repeat one test until max_tokens, or "correct" a given
example; each rule here answers one of those habits seen on the 0.5B and 1.5B local models.
"""

from __future__ import annotations

import ast
import re

from workbench.code.example_tests import without_functions
from workbench.code.prompts import max_tests
from workbench.code.splitting import one_check_per_test
from workbench.code.task import CodeTask, count_assertions, count_tests

_PLACEHOLDER = re.compile(r"(?<![A-Za-z0-9])(EXPECTED|INPUT|WHAT_IT_CHECKS|WHAT IT CHECKS|whatItChecks)(?![A-Za-z0-9])")


def tidy_tests(task: CodeTask, written: str) -> tuple[str, list[str], list[str]]:
    """(the test file to run, notes on what was changed and why, placeholders left in it)."""
    source, cut = complete_tests(task, written)
    notes = [cut] if cut else []
    left = placeholders(source)
    if left:
        kept = without_placeholder_tests(task, source)
        usable = with_examples(task, kept)
        if placeholders(kept) or not (count_tests(task, usable) and count_assertions(task, usable)):
            return source, notes, left  # nothing filled in: ask again
        notes.append(f"dropped the tests that kept the placeholders {', '.join(left)}")
        source = kept
    source, capped = at_most(task, source, max_tests(task))
    notes += [capped] if capped else []
    source, split = one_check_per_test(task, source)
    notes += [split] if split else []
    tidy = with_examples(task, source)
    if not count_tests(task, source) and count_tests(task, tidy):
        notes.append("the answer had no test: the task's examples are the tests")
    return tidy, notes, []


def placeholders(source: str) -> list[str]:
    """Skeleton placeholders a model copied instead of filling in (small models do)."""
    return sorted(set(_PLACEHOLDER.findall(source)))


def complete_tests(task: CodeTask, source: str) -> tuple[str, str]:
    """A Python test file cut back to its last complete statement when its end does not parse (an
    answer that ran out of tokens stops mid-test), a Java test class closed when its answer was cut
    between two tests, each with a note saying so; other files as given."""
    if task.language == "java":
        return _closed_java(source)
    if task.language != "python" or not source.strip() or _parses(source):
        return source, ""
    lines = source.splitlines(keepends=True)
    for end in range(len(lines) - 1, 0, -1):
        kept = "".join(lines[:end])
        if _parses(kept):
            return kept, f"cut the test file after line {end}: its end did not parse (the answer ran out of tokens?)"
    return source, ""


def _closed_java(source: str) -> tuple[str, str]:
    """The class closed with the braces it lacks, when the file ends between two members: the answer
    was stopped at its next test (`stopping.enough_tests`) or ran out of tokens there."""
    stripped = source.rstrip()
    missing = stripped.count("{") - stripped.count("}")
    if missing <= 0 or not stripped.endswith("}"):
        return source, ""
    return stripped + "\n" + "}\n" * missing, f"closed the test class ({missing} brace(s)): the answer stopped after a test"


def without_placeholder_tests(task: CodeTask, source: str) -> str:
    """The test file less the tests that still hold skeleton placeholders ("" if Python that does not
    parse): the filled-in tests of a half-copied skeleton are still worth running."""
    return task.lang.examples.drop(source, lambda name, text: bool(placeholders(text)))


def at_most(task: CodeTask, source: str, limit: int) -> tuple[str, str]:
    """A Python test file with only its first `limit` test functions (the task's examples not counted),
    and a note when it had more: a repeated test costs a sandbox run and prompt tokens every round."""
    tree = _tree(task, source)
    if tree is None:
        return source, ""
    extra = [f.name for f in _tests(tree) if f.name not in task.example_names][limit:]
    if not extra:
        return source, ""
    return without_functions(source, set(extra)), f"kept the first {limit} tests, dropped {len(extra)} more"


def with_examples(task: CodeTask, source: str) -> str:
    """The test file with the task's example tests in it exactly as derived from the task (a model's
    edited copy of one is replaced) and the imports they need: the user's examples are the one part
    of the spec a model cannot get wrong, so no test round or fix round may drop or change them."""
    if not task.example_cases:
        return source
    return task.lang.examples.insert(source, task.example_cases, function=task.function_name, stem=task.stem,
                                     module=task.module)


def _tree(task: CodeTask, source: str) -> ast.Module | None:
    if task.language != "python":
        return None
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        return None


def _tests(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name.startswith("test")]


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True
