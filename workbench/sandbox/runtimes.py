"""Languages the sandbox can run, as a registry of Runtime entries (add one with `register`).

    run = run_tests("python", {"fib.py": src, "test_fib.py": tests})
    run.ok, run.report.failing(), run.coverage, run.scan, run.files   # files = after formatting
    run_program("typescript", {"main.ts": "console.log(1)"}).result.stdout
    run_path("java", "some/dir")                                        # tests if it has any, else main

Each runtime says how to run one program and how to run its tests (runner + JUnit XML report +
coverage) with the tools of the toolchain directory (scripts/setup-toolchain.sh), which the
sandbox binds read-only. Formatting happens before tests: ruff on the host (it only parses),
prettier inside the sandbox (a prettier config file can be JavaScript, so it is untrusted).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from workbench.errors import SandboxError, WorkbenchError
from workbench.sandbox import get_executor, reports
from workbench.sandbox.executor import ExecResult, Executor, Limits, check_files, default_limits, files_from_path
from workbench.sandbox.fixes import RuntimeUnavailable, missing_tools_fix
from workbench.sandbox.scan import ScanReport, scan_python

REPORT_DIR = ".workbench"


class UnknownLanguage(WorkbenchError):
    http_status = 422
    exit_code = 2  # a usage error, like the CLI's own

    def __init__(self, name: str):
        super().__init__(f"Unknown language {name!r}. Available: {', '.join(sorted(RUNTIMES))}.")


@dataclass(frozen=True)
class Runtime:
    name: str
    extensions: tuple[str, ...]
    tools: tuple[str, ...]  # keys of Toolchain.paths() that must exist
    is_test: Callable[[str], bool]
    entries: tuple[str, ...]  # program entry points looked for in a directory, in order
    program: Callable[[dict, str, dict[str, bytes]], str]  # (tools, entry, files) -> shell script
    tests: Callable[[dict, list[str], dict[str, bytes], bool], str]  # (tools, tests, files, format) -> script
    env: Callable[[Limits], dict[str, str]]
    coverage: Callable[[dict[str, bytes], Callable[[str], bool]], float | None]
    coverage_note: str
    default_name: Callable[[str], str]  # file name for a program given as source text
    min_memory_mb: int = 256
    min_timeout_s: float = 10.0
    host_format: Callable[[dict[str, bytes]], tuple[dict[str, bytes], list[str]]] | None = None
    scan: Callable[..., ScanReport] | None = None


RUNTIMES: dict[str, Runtime] = {}


def register(runtime: Runtime) -> Runtime:
    RUNTIMES[runtime.name] = runtime
    return runtime


def get_runtime(name: str) -> Runtime:
    key = (name or "").strip().lower()
    runtime = RUNTIMES.get(key) or RUNTIMES.get(ALIASES.get(key, ""))
    if runtime is None:
        raise UnknownLanguage(name)
    return runtime


def _q(items: list[str]) -> str:
    return " ".join(shlex.quote(i) for i in items)


# --- Python ----------------------------------------------------------------------------------


def _py_is_test(path: str) -> bool:
    name = PurePosixPath(path).name
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


# One interpreter for pytest and coverage (a second `coverage json` process costs ~0.3 s a round).
_PY_DRIVER = """
import sys, coverage
cov = coverage.Coverage(data_file=None, branch=True, source=["."],
                        omit=["*/test_*.py", "*/*_test.py", "*/conftest.py"])
cov.start()
import pytest
# A test file that does not load is reported (a "collection failure" case) and the others still run.
rc = pytest.main(["-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit2", "--continue-on-collection-errors",
                  "--junitxml=%(dir)s/junit.xml", *sys.argv[1:]])
cov.stop()
try:
    cov.json_report(outfile="%(dir)s/coverage.json")
except coverage.exceptions.NoDataError:
    pass
except Exception as exc:
    print("workbench: coverage report failed:", exc, file=sys.stderr)
sys.exit(int(rc))
""".replace("%(dir)s", REPORT_DIR)


def _py_tests(t: dict, tests: list[str], files: dict[str, bytes], fmt: bool) -> str:
    return (f"mkdir -p {REPORT_DIR}\n"
            f"exec {shlex.quote(t['python'])} -c {shlex.quote(_PY_DRIVER)} {_q(tests)}\n")


def _ruff_format(files: dict[str, bytes]) -> tuple[dict[str, bytes], list[str]]:
    """ruff format on the host: it only parses, and --isolated ignores any config in the files."""
    try:
        from ruff.__main__ import find_ruff_bin

        ruff = find_ruff_bin()
    except (ImportError, FileNotFoundError):
        return files, ["ruff is not installed: Python was not formatted"]
    sources = {n: d for n, d in files.items() if n.endswith(".py")}
    if not sources:
        return files, []
    with tempfile.TemporaryDirectory(prefix="workbench-fmt-") as tmp:
        for name, data in sources.items():
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_bytes(data)
        done = subprocess.run([ruff, "format", "--isolated", "--no-cache", "-q", tmp], capture_output=True,
                              text=True, timeout=60, check=False)
        out = dict(files)
        for name in sources:
            out[name] = (Path(tmp) / name).read_bytes()
    notes = [f"ruff format: {line.replace(tmp + '/', '')}" for line in done.stderr.splitlines() if line.strip()]
    return out, notes[:20]


def _py_coverage(files: dict[str, bytes], is_test: Callable[[str], bool]) -> float | None:
    data = files.get(f"{REPORT_DIR}/coverage.json")
    return reports.coverage_py_json(data) if data else None


register(Runtime(
    name="python", extensions=(".py",), tools=("python",), is_test=_py_is_test,
    entries=("main.py", "__main__.py", "app.py", "solution.py"),
    program=lambda t, entry, files: f"exec {shlex.quote(t['python'])} {shlex.quote(entry)}\n",
    tests=_py_tests,
    env=lambda limits: {"PYTHONHASHSEED": "0"},
    coverage=_py_coverage,
    coverage_note="coverage.py, statements and branches of non-test files",
    default_name=lambda code: "main.py",
    host_format=_ruff_format, scan=scan_python,
))


# --- TypeScript ------------------------------------------------------------------------------

_TS_TEST = re.compile(r"(\.(test|spec)\.(ts|tsx|mts|cts)$)|(^test_.*\.ts$)")


def _ts_is_test(path: str) -> bool:
    return bool(_TS_TEST.search(PurePosixPath(path).name))


def _node_env(t: dict) -> str:
    """Shell lines that put the toolchain's node first on PATH: `#!/usr/bin/env node` scripts (tsx's own
    bin, a test's child process) must find it, and a PyPI node is not in /usr/bin."""
    return f"PATH={shlex.quote(str(PurePosixPath(t['node']).parent))}:$PATH; export PATH\n"


def _ts_program(t: dict, entry: str, files: dict[str, bytes]) -> str:
    return _node_env(t) + f"exec {shlex.quote(t['node'])} {shlex.quote(t['tsx'])} {shlex.quote(entry)}\n"


def _ts_tests(t: dict, tests: list[str], files: dict[str, bytes], fmt: bool) -> str:
    node, tsx = shlex.quote(t["node"]), shlex.quote(t["tsx"])
    script = _node_env(t) + f"mkdir -p {REPORT_DIR}\n"
    if fmt:
        ts = [n for n in files if n.endswith((".ts", ".tsx", ".mts", ".cts"))]
        # --no-config: a prettier config may be JavaScript; formatting must not depend on the files.
        script += (f"{node} {shlex.quote(t['prettier'])} --no-config --no-editorconfig --log-level=warn "
                   f"--write {_q(ts)} >&2 || echo 'workbench: prettier could not format the files' >&2\n")
    script += (f"exec {node} {tsx} --test --experimental-test-coverage "
               f"--test-reporter=junit --test-reporter-destination={REPORT_DIR}/junit.xml "
               f"--test-reporter=lcov --test-reporter-destination={REPORT_DIR}/lcov.info "
               f"--test-reporter=spec --test-reporter-destination=stdout {_q(tests)}\n")
    return script


def _ts_coverage(files: dict[str, bytes], is_test: Callable[[str], bool]) -> float | None:
    data = files.get(f"{REPORT_DIR}/lcov.info")
    return reports.lcov_percent(data, skip=lambda p: is_test(p) or "node_modules" in p) if data else None


register(Runtime(
    name="typescript", extensions=(".ts", ".tsx", ".mts", ".cts"), tools=("node", "tsx", "prettier"),
    is_test=_ts_is_test, entries=("main.ts", "index.ts", "app.ts", "solution.ts"),
    program=_ts_program,
    tests=_ts_tests,
    # Node sizes its heap from host RAM; cap it under the sandbox's memory limit instead. Three test
    # reporters trip node's listener-count warning, which is noise in every failure message.
    env=lambda limits: {"NODE_OPTIONS": f"--max-old-space-size={max(64, int(limits.memory_mb * 0.6))} "
                                        f"--disable-warning=MaxListenersExceededWarning",
                        "TSX_DISABLE_CACHE": "1", "NO_COLOR": "1", "FORCE_COLOR": "0"},
    coverage=_ts_coverage,
    coverage_note=("node --experimental-test-coverage (V8, source-mapped through tsx), lines of non-test files; "
                   "approximate: node 20 maps some of esbuild's module wrapper onto the source, so a small "
                   "file can under-report (a fully run one-function file shows 33%)"),
    default_name=lambda code: "main.ts",
    min_memory_mb=384, min_timeout_s=20.0,
))


# --- Java ------------------------------------------------------------------------------------

_JAVA_CLASS = re.compile(r"^\s*public\s+(?:final\s+|abstract\s+)*(?:class|interface|enum|record)\s+(\w+)", re.MULTILINE)
_JAVA_PACKAGE = re.compile(r"^\s*package\s+([\w.]+)\s*;", re.MULTILINE)


def _java_is_test(path: str) -> bool:
    stem = PurePosixPath(path).stem
    return path.endswith(".java") and (stem.endswith(("Test", "Tests")) or stem.startswith("Test"))


def _jvm_flags(limits: Limits) -> list[str]:
    # The JVM cannot see the cgroup (no /sys in the sandbox), so size it explicitly; one GC thread
    # and C1 only: fewer threads under the process limit and a faster start.
    heap = max(64, int(limits.memory_mb * 0.45))
    return [f"-Xmx{heap}m", "-Xss1m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:ActiveProcessorCount=1",
            "-XX:MaxMetaspaceSize=128m", "-XX:ReservedCodeCacheSize=48m", "-Djava.io.tmpdir=/tmp"]


def _javac(t: dict, sources: list[str], classpath: str) -> str:
    return (f"mkdir -p {REPORT_DIR}/classes\n"
            f"{shlex.quote(t['javac'])} $JFLAGS -encoding UTF-8 -d {REPORT_DIR}/classes -cp {shlex.quote(classpath)} "
            f"{_q(sources)} || {{ echo 'workbench: compilation failed' >&2; exit 3; }}\n")


def _java_program(t: dict, entry: str, files: dict[str, bytes]) -> str:
    package = _JAVA_PACKAGE.search(files.get(entry, b"").decode("utf-8", "replace"))
    main = (package.group(1) + "." if package else "") + PurePosixPath(entry).stem
    sources = [n for n in files if n.endswith(".java")]
    return _javac(t, sources, ".") + f"exec {shlex.quote(t['java'])} $JVM -cp {REPORT_DIR}/classes {shlex.quote(main)}\n"


def _java_tests(t: dict, tests: list[str], files: dict[str, bytes], fmt: bool) -> str:
    sources = [n for n in files if n.endswith(".java")]
    return (_javac(t, sources, t["junit"]) +
            f"exec {shlex.quote(t['java'])} $JVM -jar {shlex.quote(t['junit'])} -cp {REPORT_DIR}/classes "
            f"--scan-class-path --disable-banner --disable-ansi-colors --details=tree "
            f"--reports-dir={REPORT_DIR}/reports --fail-if-no-tests\n")


def _java_env(limits: Limits) -> dict[str, str]:
    flags = _jvm_flags(limits)
    return {"JVM": " ".join(flags), "JFLAGS": " ".join(f"-J{f}" for f in flags)}


register(Runtime(
    name="java", extensions=(".java",), tools=("javac", "java", "junit"), is_test=_java_is_test,
    entries=("Main.java", "App.java", "Solution.java"),
    program=_java_program,
    tests=_java_tests, env=_java_env,
    coverage=lambda files, is_test: None,
    coverage_note=("not measured: the only Java coverage tool packaged here (Debian's libjacoco-java 0.8.6) "
                   "predates Java 17 class files and ships no report CLI"),
    default_name=lambda code: f"{(_JAVA_CLASS.findall(code) or ['Main'])[0]}.java",
    min_memory_mb=768, min_timeout_s=60.0,
))

ALIASES = {"py": "python", "python3": "python", "ts": "typescript", "node": "typescript", "jvm": "java"}


# --- running ---------------------------------------------------------------------------------


@dataclass
class SandboxRun:
    """One run of a program or a test suite, with everything the code loop needs to judge it."""

    language: str
    kind: str  # "tests" | "program"
    result: ExecResult | None  # None when the security scan blocked the run
    report: reports.TestReport | None = None  # tests only
    coverage: float | None = None  # percent, tests only
    coverage_note: str = ""
    scan: ScanReport | None = None
    files: dict[str, bytes] = field(default_factory=dict)  # the inputs as run (after formatting)
    produced: dict[str, bytes] = field(default_factory=dict)  # new files, minus runner reports
    notes: list[str] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return self.result is None

    @property
    def ok(self) -> bool:
        if self.result is None:
            return False
        if self.kind == "tests":
            return self.report is not None and self.report.ok and not self.result.timed_out
        return self.result.ok

    def as_dict(self) -> dict:
        return {"language": self.language, "kind": self.kind, "ok": self.ok, "blocked": self.blocked,
                "result": self.result.as_dict() if self.result else None,
                "report": self.report.as_dict() if self.report else None,
                "coverage": self.coverage, "coverage_note": self.coverage_note,
                "scan": self.scan.as_dict() if self.scan else None,
                "files": sorted(self.files), "produced": {k: len(v) for k, v in self.produced.items()},
                "notes": self.notes}


def _prepare(runtime: Runtime, files: Mapping[str, str | bytes], executor: Executor | None,
             limits: Limits | None) -> tuple[Executor, dict, dict[str, bytes], Limits]:
    encoded = check_files(files)
    if not encoded:
        raise SandboxError(f"Nothing to run: no {runtime.name} files were given.")
    executor = executor or get_executor()
    require_runtime(runtime.name, executor)
    tools = executor.tools()
    limits = limits or default_limits()
    limits = limits.merged(memory_mb=max(limits.memory_mb, runtime.min_memory_mb),
                           timeout_s=max(limits.timeout_s, runtime.min_timeout_s))
    return executor, tools, encoded, limits


def require_runtime(language: str, executor: Executor | None = None) -> Runtime:
    """The language's runtime if it can run here, else RuntimeUnavailable naming the command that
    installs it. Cheap (file checks): call it before spending model time on code for that language."""
    runtime = get_runtime(language)
    executor = executor or get_executor()
    if executor.name == "docker":  # the docker backend's tools live in its image
        return runtime
    tools = executor.tools()
    missing = [key for key in runtime.tools if not Path(tools[key]).exists()]
    if missing:
        raise RuntimeUnavailable(runtime.name, [f"{key} ({tools[key]})" for key in missing],
                                 missing_tools_fix(runtime.name, missing))
    return runtime


def _scan(runtime: Runtime, files: dict[str, bytes], allow_high: bool, run: SandboxRun) -> bool:
    """Scan if the runtime has a scanner; True when the findings block the run."""
    if runtime.scan is None:
        return False
    run.scan = runtime.scan(files, allow_high=allow_high)
    if run.scan.unparsed:
        run.notes.append(f"bandit could not parse (syntax errors?): {', '.join(run.scan.unparsed)}")
    if run.scan.blocks:
        run.notes.append("not run: the security scan found high-severity issues (allow_high=True runs it anyway)")
    return run.scan.blocks


def _split_outputs(runtime: Runtime, inputs: dict[str, bytes], result: ExecResult) -> tuple[dict, dict]:
    """(inputs as they were run, i.e. with in-sandbox formatting applied; new files minus reports)."""
    ran = {name: result.files.get(name, data) for name, data in inputs.items()}
    produced = {n: d for n, d in result.files.items() if n not in inputs and not n.startswith(REPORT_DIR + "/")}
    return ran, produced


def run_tests(language: str, files: Mapping[str, str | bytes], *, tests: list[str] | None = None,
              executor: Executor | None = None, limits: Limits | None = None, allow_high: bool = False,
              format: bool = True) -> SandboxRun:
    """Format, scan, then run the test files (default: every file named like a test) in the sandbox."""
    runtime = get_runtime(language)
    executor, tools, encoded, limits = _prepare(runtime, files, executor, limits)
    test_files = tests if tests is not None else sorted(n for n in encoded if runtime.is_test(n))
    missing = [t for t in test_files if t not in encoded]
    if missing or not test_files:
        raise SandboxError(f"No {runtime.name} test files to run ({'missing: ' + ', '.join(missing) if missing else 'none found'}); "
                           f"name them like {_TEST_EXAMPLES[runtime.name]}, or pass tests=[...].")
    run = SandboxRun(runtime.name, "tests", None, coverage_note=runtime.coverage_note)
    if format and runtime.host_format is not None:
        encoded, notes = runtime.host_format(encoded)
        run.notes += notes
    run.files = dict(encoded)
    if _scan(runtime, encoded, allow_high, run):
        return run
    script = runtime.tests(tools, test_files, encoded, format)
    run.result = executor.run(["/bin/sh", "-c", script], encoded, limits=limits, env=runtime.env(limits),
                              language=runtime.name)
    run.files, run.produced = _split_outputs(runtime, encoded, run.result)
    run.report = _read_report(run.result, runtime)
    run.coverage = runtime.coverage(run.result.files, runtime.is_test)
    return run


_TEST_EXAMPLES = {"python": "test_x.py", "typescript": "x.test.ts", "java": "XTest.java"}


def _read_report(result: ExecResult, runtime: Runtime) -> reports.TestReport:
    xmls = sorted(n for n in result.files if n.startswith(REPORT_DIR + "/") and n.endswith(".xml"))
    report = reports.merge([reports.parse_junit(result.files[n], source=n) for n in xmls]) if xmls \
        else reports.TestReport(problem="the test runner wrote no JUnit XML report")
    if "workbench: compilation failed" in result.stderr:
        # A compile error is a failure the repair loop must see, with a stable id and type.
        report.cases.append(reports.TestCase("compile::javac", "compile", "javac", "error", "CompilationError",
                                             "compilation failed", result.stdout[-4000:] + result.stderr[-4000:]))
    if result.timed_out or result.killed_reason:
        report.problem = "; ".join(p for p in (report.problem, result.killed_reason) if p)
    return report


def run_program(language: str, files: Mapping[str, str | bytes], *, entry: str | None = None,
                executor: Executor | None = None, limits: Limits | None = None,
                allow_high: bool = False) -> SandboxRun:
    """Run one program (entry: a file name in `files`; default: main.py / main.ts / Main.java ...)."""
    runtime = get_runtime(language)
    executor, tools, encoded, limits = _prepare(runtime, files, executor, limits)
    entry = entry or next((e for e in runtime.entries if e in encoded), None) or \
        (next(iter(encoded)) if len(encoded) == 1 else None)
    if entry is None or entry not in encoded:
        raise SandboxError(f"No entry point for {runtime.name}: name the program {' or '.join(runtime.entries)}, "
                           f"or pass entry=... (got {', '.join(sorted(encoded)) or 'no files'}).")
    run = SandboxRun(runtime.name, "program", None, files=dict(encoded))
    if _scan(runtime, encoded, allow_high, run):
        return run
    run.result = executor.run(["/bin/sh", "-c", runtime.program(tools, entry, encoded)], encoded, limits=limits,
                              env=runtime.env(limits), language=runtime.name)
    run.files, run.produced = _split_outputs(runtime, encoded, run.result)
    return run


def run_code(language: str, code: str, **options) -> SandboxRun:
    """Run a program given as source text (file name: main.py, main.ts, or the public Java class)."""
    if not code or not code.strip():
        raise SandboxError("Empty code: there is nothing to run.")
    runtime = get_runtime(language)
    return run_program(runtime.name, {runtime.default_name(code): code}, **options)


def run_path(language: str, path: str | Path, **options) -> SandboxRun:
    """Run a file or a directory: its tests when it has test files, else its program."""
    runtime = get_runtime(language)
    files = files_from_path(path)
    if Path(path).is_file():
        name = Path(path).name
        if runtime.is_test(name):
            return run_tests(runtime.name, files, **options)
        options.pop("format", None)
        return run_program(runtime.name, files, entry=name, **options)
    if any(runtime.is_test(n) for n in files):
        return run_tests(runtime.name, files, **options)
    options.pop("format", None)
    return run_program(runtime.name, files, **options)
