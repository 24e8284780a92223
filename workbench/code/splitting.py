"""A model-written test with several checks, split into one test per check.

    source, note = one_check_per_test(task, written)   # note: "" when nothing was split

A small model puts six assertions in one test, and one of them is often wrong (an expected value it
miscounted, a rule it added). Kept whole, that test fails for every candidate alike and the right
checks beside the wrong one count for nothing; split, a candidate is judged check by check, and
agreement between independent candidates (`code.candidates`) singles out the one wrong check. A
setup statement goes into every test after it, so each test runs exactly as the lines before its
check ran in the original. Repeated checks are written once, and a test block cut off by the end of
the answer (TypeScript) keeps its complete statements and is closed. Python, TypeScript and Java
(JUnit `@Test` methods). The request's example tests are left as they are (one check each).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from workbench.code.example_tests import function_lines
from workbench.code.examples import closing_paren
from workbench.code.task import CodeTask

_TS_TEST = re.compile(r"^[ \t]*(?:test|it)\s*\(\s*([\"'`])(?P<name>[^\"'`\n]*)\1", re.MULTILINE)
_CONTINUES = tuple(".+-*/%?:&|,=<>")  # a TypeScript line ending or starting with one of these goes on


def one_check_per_test(task: CodeTask, source: str) -> tuple[str, str]:
    splitter = _SPLITTERS.get(task.language)
    if splitter is None or not source.strip():
        return source, ""
    split, count = splitter(source, set(task.example_names), task.lang.assertion)
    if not count:
        return source, ""
    split = split if split.endswith("\n") else split + "\n"
    return split, f"split {count} test(s) with several checks into one test per check"


# --- Python ---------------------------------------------------------------------------------------


def _split_python(source: str, keep: set[str], assertion: re.Pattern) -> tuple[str, int]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source, 0
    lines = source.splitlines(keepends=True)
    names = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    replaced: list[tuple[slice, str]] = []
    for node in tree.body:
        if not (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test")
                and node.name not in keep and not node.decorator_list):
            continue
        tests = _python_tests(node, lines, names)
        if tests:
            replaced.append((function_lines(node), "\n\n".join(tests)))
    for where, text in reversed(replaced):
        lines[where] = [text if text.endswith("\n") else text + "\n"]
    return "".join(lines), len(replaced)


def _python_tests(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str], names: set[str]) -> list[str]:
    """The function's checks as separate functions, each after the setup lines before it; [] to keep it."""
    body = [s for s in node.body if not _is_docstring(s)]
    rows = [s.lineno for s in body]
    if not body or body[0].lineno == node.lineno or len(rows) != len(set(rows)):
        return []  # a one-line body or statements sharing a line (`a; b`): not worth the risk
    header = "".join(lines[node.lineno - 1:node.body[0].lineno - 1])
    checks = _checks_after_setup([("".join(lines[st.lineno - 1:st.end_lineno]), _is_python_check(st))
                                  for st in body])
    if len(checks) < 2:
        return []
    tests = []
    for number, (before, check) in enumerate(checks, 1):
        name = _fresh(f"{node.name}_{number}", names)
        tests.append(re.sub(rf"\bdef\s+{re.escape(node.name)}\b", f"def {name}", header, count=1)
                     + "".join(before) + check)
    return tests


def _is_python_check(statement: ast.stmt) -> bool:
    if isinstance(statement, (ast.With, ast.AsyncWith)) and any(
            "raises" in ast.unparse(item.context_expr) or "warns" in ast.unparse(item.context_expr)
            for item in statement.items):
        return True
    return any(isinstance(n, ast.Assert) or (isinstance(n, ast.Call) and _called(n).startswith("assert"))
               for n in ast.walk(statement))


def _called(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""


def _is_docstring(statement: ast.stmt) -> bool:
    return (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
            and isinstance(statement.value.value, str))


def _fresh(name: str, taken: set[str]) -> str:
    while name in taken:
        name += "_"
    taken.add(name)
    return name


# --- TypeScript -----------------------------------------------------------------------------------


def _split_typescript(source: str, keep: set[str], assertion: re.Pattern) -> tuple[str, int]:
    """Each `test("…", () => { … });` with two or more checks becomes one test per check; a block the
    answer ended in is closed after its last complete statement (and dropped if none is a check)."""
    changed, out, at = 0, [], 0
    titles = {m.group("name") for m in _TS_TEST.finditer(source)}
    for match in _TS_TEST.finditer(source):
        if match.start() < at:
            continue  # a test(...) inside a test already handled
        brace = _body_brace(source, match.end())
        if brace is None:
            continue
        close = closing_paren(source, brace, code=True)
        body = source[brace + 1:close if close is not None else len(source)]
        statements = _statements(body, complete=close is not None)
        end = _call_end(source, close) if close is not None else len(source)
        if end is None:
            continue
        head = source[match.start():brace + 1]
        tail = source[close:end] if close is not None else "});"
        name = match.group("name")
        checks = _checks(statements, assertion)
        if name in keep or (close is not None and len(checks) < 2):
            continue
        outer = re.match(r"[ \t]*", head).group(0)
        indent = outer + "  "
        tests = []
        for number, (before, check) in enumerate(checks, 1):
            title = name if len(checks) == 1 else _fresh(f"{name} ({number})", titles)
            quote = match.group(1)
            this_head = head.replace(f"{quote}{name}{quote}", f"{quote}{title}{quote}", 1)
            lines = "".join(f"{indent}{s}\n" for s in [*before, check])
            tests.append(f"{this_head}\n{lines}{outer}{tail.lstrip()}")
        out.append(source[at:match.start()] + "\n\n".join(tests))
        at, changed = end, changed + 1
    if not changed:
        return source, 0
    return "".join(out) + source[at:], changed


def _checks(statements: list[str], assertion: re.Pattern) -> list[tuple[list[str], str]]:
    return _checks_after_setup([(s, bool(assertion.search(s))) for s in statements])


def _checks_after_setup(statements: list[tuple[str, bool]]) -> list[tuple[list[str], str]]:
    """(the setup statements before it, the check) for each distinct check among (text, is_check) pairs."""
    setup: list[str] = []
    checks: list[tuple[list[str], str]] = []
    for text, is_check in statements:
        if not is_check:
            setup.append(text)
        elif text.strip() not in {c[1].strip() for c in checks}:
            checks.append((list(setup), text))
    return checks


def _body_brace(source: str, start: int) -> int | None:
    """The `{` opening the test's function body: after its `=>` (or `function (...)`)."""
    arrow = re.compile(r"=>\s*\{|function\s*\w*\s*\([^)]*\)\s*\{").search(source, start)
    if arrow is None or source.count("\n", start, arrow.start()) > 2:
        return None
    return arrow.end() - 1


def _call_end(source: str, close: int) -> int | None:
    """Just past the `)` (and `;`) that closes test( … ) after its body's `}`."""
    match = re.compile(r"\}\s*\)\s*;?[ \t]*").match(source, close)
    return match.end() if match else None


_BLOCK = re.compile(r"(?:for|if|while|try|switch|do)\b")
_BLOCK_GOES_ON = re.compile(r"\s*(?:else|catch|finally|while)\b")


def _statements(body: str, *, complete: bool, newline_ends: bool = True) -> list[str]:
    """The body's top-level statements, comments left out; an unfinished last one is dropped when the
    body was cut off. TypeScript statements may end at a line's end; Java ones end at `;` or, for a
    block statement (`for`, `if`, `try` ...), at the brace closing it."""
    out: list[str] = []
    depth, i, start, n = 0, 0, 0, len(body)

    def finish(end: int) -> None:
        text = _without_comments(body[start:end]).strip()
        if text and text not in ";":
            out.append(text if text.endswith(";") or text.endswith("}") else text + ";")

    while i < n:
        ch = body[i]
        if body.startswith("//", i) or body.startswith("/*", i):
            stop = body.find("\n" if body[i + 1] == "/" else "*/", i + 2)
            if stop < 0:
                break
            i = stop if body[i + 1] == "/" else stop + 2
            continue
        if ch in "'\"`":
            stop = _string_end(body, i)
            if stop is None:
                return out
            i = stop + 1
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
            if depth == 0 and ch == "}" and _BLOCK.match(_without_comments(body[start:i]).strip()) \
                    and not _BLOCK_GOES_ON.match(body, i + 1):
                finish(i + 1)
                start = i + 1
        elif depth == 0 and (ch == ";" or (ch == "\n" and newline_ends and _ends_here(body, start, i))):
            finish(i + 1)
            start = i + 1
        i += 1
    if complete and depth == 0:
        finish(n)
    return out


def _ends_here(body: str, start: int, newline: int) -> bool:
    before = _without_comments(body[start:newline]).rstrip()
    after = body[newline:].lstrip()
    return bool(before) and not before.endswith(_CONTINUES) and not after.startswith(_CONTINUES)


def _string_end(text: str, start: int) -> int | None:
    quote, i = text[start], start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            return i
        if text[i] == "\n" and quote != "`":
            return None
        i += 1
    return None


def _without_comments(text: str) -> str:
    return re.sub(r"^\s*//.*$", "", text, flags=re.MULTILINE)


# --- Java -----------------------------------------------------------------------------------------

_JAVA_TEST = re.compile(r"^[ \t]*@Test\s+(?:public\s+)?void\s+(?P<name>\w+)\s*\(\s*\)[^{;]*\{", re.MULTILINE)


def _split_java(source: str, keep: set[str], assertion: re.Pattern) -> tuple[str, int]:
    """Each complete `@Test void name() { … }` with two or more checks becomes one method per check
    (`name_1`, `name_2`, ...); a method the answer ended in is left to `testfile.complete_tests`."""
    changed, out, at = 0, [], 0
    names = set(re.findall(r"\bvoid\s+(\w+)\s*\(", source))
    for match in _JAVA_TEST.finditer(source):
        name, brace = match.group("name"), match.end() - 1
        close = closing_paren(source, brace, code=True)
        if close is None or name in keep or f"{name}()" in keep or match.start() < at:
            continue
        checks = _checks(_statements(source[brace + 1:close], complete=True, newline_ends=False), assertion)
        if len(checks) < 2:
            continue
        head, outer = source[match.start():brace + 1], re.match(r"[ \t]*", match.group(0)).group(0)
        methods = []
        for number, (before, check) in enumerate(checks, 1):
            fresh = _fresh(f"{name}_{number}", names)
            this_head = re.sub(rf"\bvoid\s+{name}\b", f"void {fresh}", head, count=1)
            lines = "".join(f"{outer}    {s}\n" for s in [*before, check])
            methods.append(f"{this_head}\n{lines}{outer}}}")
        out.append(source[at:match.start()] + "\n\n".join(methods))
        at, changed = close + 1, changed + 1
    if not changed:
        return source, 0
    return "".join(out) + source[at:], changed


_SPLITTERS: dict[str, Callable[[str, set[str], re.Pattern], tuple[str, int]]] = {
    "python": _split_python, "typescript": _split_typescript, "java": _split_java}
