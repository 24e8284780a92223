"""Where a code answer is complete, so generation stops there instead of at max_tokens.

A small model keeps going after what it was asked for: prose after the code block ("This function
works by ..."), or twenty near-identical tests when eight were asked for (tokens at ~20/s on two cores,
and `testfile.at_most` drops the extra tests anyway). Each rule here looks at the reply so far and
says where it ends, or None to keep reading:

    reply = complete_until(model, messages, files_closed(task, [task.solution_file]), temperature=0)

Up to the cut, the text is exactly what the model would have written without it (the same tokens,
greedy or seeded); the tokens it had already generated past the cut are still counted and paid for.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from workbench.code.prompts import parse_files
from workbench.code.task import CodeTask
from workbench.messages import Completion

Until = Callable[[str], "int | None"]  # the reply so far -> where it ends (an index), or None: not yet

_CLOSED_BLOCK = re.compile(r"```[^\n`]*\n.*?\n[ \t]*```", re.DOTALL)


def files_closed(task: CodeTask, names: Sequence[str]) -> Until:
    """The reply ends once fenced blocks closed so far hold every file in `names`."""
    wanted = set(names)

    def until(text: str) -> int | None:
        ends = [m.end() for m in _CLOSED_BLOCK.finditer(text)]
        if not ends:
            return None
        end = ends[-1]
        return end if wanted <= set(parse_files(task, text[:end], task.solution_file)) else None

    return until


def enough_tests(task: CodeTask, limit: int) -> Until:
    """The reply ends where its (limit + 1)-th test starts, where a line comes a third time in a row (a
    model stuck repeating one assertion until max_tokens), or once the test file's block is closed.
    (A Java class cut there is closed again by `testfile.complete_tests`, a TypeScript test by
    `splitting.one_check_per_test`.)"""
    closed = files_closed(task, [task.test_file])
    pattern = task.lang.test_count

    def until(text: str) -> int | None:
        starts = [m.start() for m in pattern.finditer(text)]
        if len(starts) > limit:
            return _line_start(text, starts[limit])
        return _third_repeat(text) or closed(text)

    return until


def complete_until(model: Any, messages: list[dict], until: Until, **options: Any) -> Completion:
    """One model call, streamed and stopped where `until` says the answer is complete. The completion's
    text is the reply up to that point; its usage
    counts every token generated."""
    stream = model.stream(messages, **options)
    text, cut = "", None
    try:
        for delta in stream:
            text += delta
            if "\n" in delta or "`" in delta:  # a test or a fence starts on a new line / with a backtick
                cut = until(text)
                if cut is not None:
                    break
    finally:
        stream.close()
    completion = stream.completion
    assert completion is not None  # close() always finishes it
    completion.text = text if cut is None else text[:cut]
    if cut is not None:
        completion.finish_reason = "stop"
    return completion


def _third_repeat(text: str) -> int | None:
    """The start of the first complete line that is the same as the two before it (blank lines aside)."""
    lines = [(m.start(), m.group().strip()) for m in re.finditer(r"[^\n]*\n", text)]
    lines = [(at, line) for at, line in lines if line]
    for (_, first), (_, second), (at, third) in zip(lines, lines[1:], lines[2:]):
        if len(third) > 3 and first == second == third:
            return at
    return None


def _line_start(text: str, index: int) -> int:
    """The start of the line holding `index` (a decorator such as `@Test` starts the test's line)."""
    return text.rfind("\n", 0, index) + 1
