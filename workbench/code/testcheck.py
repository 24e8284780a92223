"""A model-written test file checked before it judges anything: it may use only the names the request
defines, and it must load.

    checked = check_tests(task, source, defined={"slugify"})
    checked.source, checked.notes, checked.problem      # problem: None when the file is fit to run

Small models write tests for code they imagine: `from slug import helpers`, `import slug.strings`,
`from slugify import slugify` when the file is slug.py. Every candidate then fails identically on
the import, and a loop that trusts the tests blames the code. Here a wrong import is mended where the
intent is clear (the right module, the names the request defines), and a test that still needs a
name nobody defines is dropped with a note. What cannot be mended leaves `problem` set: the loop
then asks for the tests again or judges by the request's examples alone.
"""

from __future__ import annotations

import ast
import builtins
import re
import sys
from dataclasses import dataclass, field

from workbench.code.example_tests import without_functions
from workbench.code.task import CodeTask, count_assertions, count_tests

_TEST_LIBRARIES = {"pytest", "hypothesis", "unittest", "math", "typing", "dataclasses", "re", "json", "collections"}
_IDENT = re.compile(r"[A-Za-z_]\w*")
_TS_IMPORT = re.compile(r"^import\s*\{([^}]*)\}\s*from\s*([\"'])(\.{1,2}/[^\"']+)\2\s*;?[ \t]*$", re.MULTILINE)


@dataclass
class CheckedTests:
    source: str
    notes: list[str] = field(default_factory=list)  # what was mended or dropped, and why
    problem: str | None = None  # why the file cannot judge code; None when it can


def request_names(task: CodeTask, candidate: dict[str, str]) -> set[str]:
    """The names the request defines: its function, and every top-level definition of the candidate's
    solution that the request's text mentions (a helper the model invented is not part of the spec)."""
    words = set(_IDENT.findall(task.text))
    names = {task.function_name} - {"NAME"}
    source = candidate.get(task.solution_file, "")
    if task.language == "python":
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):
            tree = None
        defined = {n.name for n in (tree.body if tree else []) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                                     ast.ClassDef))}
        defined |= {t.id for n in (tree.body if tree else []) if isinstance(n, ast.Assign)
                    for t in n.targets if isinstance(t, ast.Name)}
    else:
        defined = set(re.findall(r"\bexport\s+(?:default\s+)?(?:async\s+)?(?:function\*?|class|const|let|var|"
                                 r"interface|type|enum)\s+([A-Za-z_]\w*)", source))
    return names | (defined & words)


def check_tests(task: CodeTask, source: str, defined: set[str]) -> CheckedTests:
    """The test file mended to import exactly `defined` from the solution, or the reason it cannot judge."""
    if task.language == "python":
        checked = _check_python(task, source, defined)
    elif task.language == "typescript":
        checked = _check_typescript(task, source, defined)
    else:
        checked = CheckedTests(source)  # Java: the compiler's errors are attributed after the run
    if checked.problem is None and not count_tests(task, checked.source):
        checked.problem = "no test is left that uses only what the request defines"
    elif checked.problem is None and not count_assertions(task, checked.source):
        checked.problem = "the tests contain no assertions"
    return checked


# --- Python ---------------------------------------------------------------------------------------


def _check_python(task: CodeTask, source: str, defined: set[str]) -> CheckedTests:
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return CheckedTests(source, problem=f"the test file does not parse (line {exc.lineno}: {exc.msg})")
    module, notes = task.module, []
    local_modules = {n.removesuffix(".py").replace("/", ".") for n in task.files if n.endswith(".py")}
    wanted: set[str] = set()  # names to import from the solution module
    aliases: dict[str, str] = {}  # `helpers.f` -> `f` where `helpers` named no real module
    lines = source.splitlines(keepends=True)
    for node in reversed([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]):
        keep = _python_import(node, module, local_modules, defined, wanted, aliases, notes)
        if keep is None:
            continue
        lines[node.lineno - 1:node.end_lineno] = [keep] if keep else []
    if aliases:  # the tests called through a removed alias: any name the request defines may be meant
        wanted |= defined
    fixed = "".join(lines)
    for alias in aliases:
        fixed = re.sub(rf"(?<![\w.]){re.escape(alias)}\.(?=[A-Za-z_])", "", fixed)
    if wanted:
        fixed = f"from {module} import {', '.join(sorted(wanted))}\n" + fixed
    try:
        tree = ast.parse(fixed)
    except SyntaxError as exc:
        return CheckedTests(source, notes, f"the mended test file does not parse (line {exc.lineno}: {exc.msg})")
    unknown = _tests_using_unknown_names(tree)
    if unknown:
        fixed = without_functions(fixed, set(unknown))
        notes += [f"dropped {name}: it uses {', '.join(sorted(names))}, which neither the request nor the test "
                  f"defines" for name, names in unknown.items()]
    return CheckedTests(fixed, notes)


def _python_import(node: ast.Import | ast.ImportFrom, module: str, local: set[str], defined: set[str],
                   wanted: set[str], aliases: dict[str, str], notes: list[str]) -> str | None:
    """The replacement text of one import line ("" drops it), or None to keep it. Names taken from the
    solution are added to `wanted`; a module alias the tests call through goes into `aliases`."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
        ours = [a for a in node.names if a.name.split(".")[0] in local | {module.split(".")[0]} and a.name != module]
        if not ours:
            return None
        for a in ours:  # `import slug.strings`: no such module; its functions are the solution's
            aliases[a.asname or a.name] = module
        notes.append(f"replaced `import {', '.join(names)}`: the request defines no such module; its names are "
                     f"imported from {module}")
        others = [a for a in node.names if a not in ours]
        return ("import " + ", ".join(a.name + (f" as {a.asname}" if a.asname else "") for a in others) + "\n"
                if others else "")
    source_module = node.module or ""
    top = source_module.split(".")[0]
    if node.level or source_module == module:
        foreign = False
    elif top in _TEST_LIBRARIES or top in sys.stdlib_module_names:
        return None
    else:
        foreign = True  # `from slugify import slugify` when the file is slug.py, or `from slug.helpers import x`
    imported = [(a.name, a.asname) for a in node.names]
    keep, dropped = [], []
    for name, asname in imported:
        if name == "*" or name in defined:
            keep.append((name, asname))
        elif not foreign:
            dropped.append(name)  # `from slug import helpers`: tests call helpers.f(...)
            aliases[asname or name] = module
        else:
            dropped.append(name)
    if not foreign and not dropped:
        return None
    for name, asname in keep:
        wanted.add(name if not asname else f"{name} as {asname}")
    what = f"from {'.' * node.level}{source_module} import {', '.join(n for n, _ in imported)}"
    notes.append(f"replaced `{what}`: " + (f"{module} is the solution's module" if foreign else
                                            f"the request defines no {', '.join(dropped)}"))
    return ""


def _tests_using_unknown_names(tree: ast.Module) -> dict[str, set[str]]:
    """{test function: names it reads that nothing defines} (a NameError waiting to blame the code)."""
    top: set[str] = set(dir(builtins))
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            top.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            top.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign, ast.For, ast.With)):
            top.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store))
    found: dict[str, set[str]] = {}
    for fn in tree.body:
        if not (isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) and fn.name.startswith("test")):
            continue
        local = {a.arg for a in ast.walk(fn.args) if isinstance(a, ast.arg)}
        local |= {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del))}
        local |= {n.name for n in ast.walk(fn) if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n is not fn}
        local |= {h.name for h in ast.walk(fn) if isinstance(h, ast.ExceptHandler) and h.name}
        local |= {a.asname or a.name for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))
                  for a in n.names}
        read = {n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        missing = read - local - top
        if missing:
            found[fn.name] = missing
    return found


# --- TypeScript -----------------------------------------------------------------------------------


def _check_typescript(task: CodeTask, source: str, defined: set[str]) -> CheckedTests:
    """Imports from the solution narrowed to what it defines, from its real path; tests calling a name
    that is then missing are dropped."""
    notes: list[str] = []
    removed: set[str] = set()

    def mend(match: re.Match) -> str:
        names = [n.strip() for n in match.group(1).split(",") if n.strip()]
        local = [n.split(" as ")[0].strip() for n in names]
        path = match.group(3)
        ours = path.removeprefix("./").removesuffix(".ts").removesuffix(".js") == task.stem
        if not ours and not all(n in defined for n in local):
            return match.group(0)  # another local file the task names: leave it to the runner
        kept = [n for n, bare in zip(names, local) if bare in defined]
        removed.update(bare for bare in local if bare not in defined)
        if kept == names and ours:
            return match.group(0)
        notes.append(f"replaced the import of {{ {', '.join(names)} }} from {path!r}: the request defines "
                     f"{', '.join(sorted(defined)) or 'none of them'} in ./{task.stem}")
        return f'import {{ {", ".join(kept)} }} from "./{task.stem}";' if kept else ""

    fixed = _TS_IMPORT.sub(mend, source)
    if removed:
        drop = task.lang.examples.drop
        fixed = drop(fixed, lambda name, text: any(re.search(rf"(?<![\w.]){re.escape(n)}\s*\(", text) for n in removed))
        notes.append(f"dropped the tests that call {', '.join(sorted(removed))}")
    return CheckedTests(fixed, notes)
