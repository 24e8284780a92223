"""The slips that make otherwise right code unrunnable, mended before it is judged, each with a note.

    files, notes = mend_slips(task, {"Pile.java": source}, tests)

A slip is something the model does not mean and a fix round would spend a whole answer on: a Java
`package` line, a missing java.util import, a TypeScript function left unexported, a Python demo call at
the top of the module.
"""

from __future__ import annotations

import ast
import re
from pathlib import PurePosixPath

from workbench.code.task import CodeTask

_JAVA_PACKAGE = re.compile(r"^\s*package\s+[\w.]+\s*;\s*\n", re.MULTILINE)


def mend_slips(task: CodeTask, candidate: dict[str, str], tests: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Undo the slips that make otherwise right code unrunnable, each with a note: a `package` line in Java
    when the tests live in the default package (javac then hides the class from them); the request's
    TypeScript function defined without `export` (the tests cannot import it); calls at a Python module's
    top level (a demo or the model's own test run, which would run, print or fail on every import); a
    java.util class used without its import (the 1.5B's usual compile error)."""
    fixed, notes = dict(candidate), []
    if task.language == "python":
        for name, source in candidate.items():
            fixed[name], dropped = _without_top_level_calls(source)
            if dropped:
                notes.append(f"removed the top-level call(s) {', '.join(dropped)} from {name} (they ran on import)")
    if task.language == "java" and not any(_JAVA_PACKAGE.search(t) for t in tests.values()):
        for name, source in candidate.items():
            fixed[name] = _JAVA_PACKAGE.sub("", source)
            if fixed[name] != source:
                notes.append(f"removed the package line of {name} (the tests are in the default package)")
    if task.language == "java":
        defined = _java_classes(fixed)
        for name, source in fixed.items():
            fixed[name], added = _with_java_util_imports(source, defined=defined)
            if added:
                notes.append(f"imported {', '.join(added)} in {name} (used without an import)")
    if task.language == "typescript" and task.function_name != "NAME" and task.solution_file in fixed:
        declared = re.compile(rf"^(?=(?:async\s+)?function\*?\s+{re.escape(task.function_name)}\b|"
                              rf"(?:const|let|class)\s+{re.escape(task.function_name)}\b)", re.MULTILINE)
        source = fixed[task.solution_file]
        exported = re.search(rf"\bexport\b[^\n]*\b{re.escape(task.function_name)}\b", source)
        if not exported and declared.search(source):
            fixed[task.solution_file] = declared.sub("export ", source, count=1)
            notes.append(f"exported {task.function_name} (the request's function; the tests import it)")
    return fixed, notes


def _without_top_level_calls(source: str) -> tuple[str, list[str]]:
    """The module less the top-level calls that demo or test it (`print(f(3))`, `main()`, `test_f()`: a call
    of print or input, of a function the module defines, or of a test runner), and what they were; a
    module that does not parse as given. Set-up calls (`sys.setrecursionlimit(...)`) stay."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source, []
    own = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    calls = [n for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
             and _demo_call(n.value, own)]
    if not calls:
        return source, []
    lines = source.splitlines(keepends=True)
    for node in reversed(calls):
        del lines[node.lineno - 1:node.end_lineno]
    return "".join(lines), [ast.get_source_segment(source, n) or "?" for n in calls][:3]


_RUNNERS = {"unittest.main", "doctest.testmod", "pytest.main"}


def _demo_call(call: ast.Call, own: set[str]) -> bool:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id in own or func.id in ("print", "input")
    return ast.unparse(func) in _RUNNERS


# The standard classes small models use without importing them: java.util and its function and stream packages.
_JAVA_STANDARD = {
    "java.util": ("ArrayDeque ArrayList Arrays BitSet Collection Collections Comparator Deque HashMap HashSet "
                  "Iterator LinkedHashMap LinkedHashSet LinkedList List Map NoSuchElementException Objects Optional "
                  "PriorityQueue Queue Random Set SortedMap SortedSet Stack StringJoiner TreeMap TreeSet").split(),
    "java.util.function": "BiFunction BinaryOperator Consumer Function Predicate Supplier UnaryOperator".split(),
    "java.util.stream": "Collectors IntStream Stream".split(),
}
_JAVA_IMPORT = re.compile(r"^\s*import\s+(static\s+)?([\w.]+?)(?:\.(\*|\w+))\s*;", re.MULTILINE)


def _java_classes(files: dict[str, str]) -> set[str]:
    """The classes, interfaces, enums and records the answer's files define (theirs shadow the standard ones)."""
    found = re.findall(r"\b(?:class|interface|enum|record)\s+(\w+)", "\n".join(files.values()))
    return set(found) | {PurePosixPath(name).stem for name in files}


def _with_java_util_imports(source: str, defined: set[str]) -> tuple[str, list[str]]:
    """The source with an import for each standard class it uses and neither imports nor defines."""
    code = re.sub(r'"(?:\\.|[^"\\])*"|//[^\n]*|/\*.*?\*/', " ", source, flags=re.DOTALL)  # not in strings or comments
    imported = {(m.group(2), m.group(3)) for m in _JAVA_IMPORT.finditer(source) if not m.group(1)}
    wildcards = {package for package, name in imported if name == "*"}
    names = {name for _, name in imported}
    missing = [f"{package}.{name}" for package, classes in _JAVA_STANDARD.items() if package not in wildcards
               for name in classes if name not in names and name not in defined and re.search(rf"\b{name}\b", code)]
    if not missing:
        return source, []
    lines = "".join(f"import {qualified};\n" for qualified in missing)
    head = re.match(r"(?:\s*(?://[^\n]*|/\*.*?\*/|package\s+[\w.]+\s*;|import\s+[^;]+;)[ \t]*\n)*", source, re.DOTALL)
    at = head.end() if head else 0
    return source[:at] + lines + ("\n" if at == 0 else "") + source[at:], missing
