"""The spec-heavy coding set: requests a user would write, with held-out tests and a reference solution each.

    benchmarks/spec/<language>/<NN_name>/task.md      the request, exactly as the model gets it
                                        reference/    files that solve it (named as the request names them)
                                        heldout/      tests never put into any prompt (pytest, node:test, JUnit 5)

    from benchmarks.spec import load, judge
    tasks = load(languages=["python"])
    verdict = judge(tasks[0], {"slugify.py": code})     # {"passed": all held-out tests pass, ...}

Every request states its rules in the text: exact file, function and class names, the errors to raise,
tie-break orders, not mutating the input, exports. A candidate passes only when ALL its held-out tests pass.
`check_references` runs every reference against its held-out tests, grouped per language in one sandbox run
(the test names and module names are unique across a language for that), and on a failure runs each task
alone to name the broken ones; tests/test_benchmark_sets.py calls it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

ROOT = Path(__file__).resolve().parent
LANGUAGES = ("python", "typescript", "java")
JUDGE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class SpecTask:
    id: str  # "python/01_slugify"
    language: str
    text: str
    reference: dict[str, str]  # file name -> source
    heldout: dict[str, str]  # test file name -> source

    @property
    def files(self) -> list[str]:
        """The files the request asks for (the reference's names)."""
        return sorted(self.reference)


def load(only: str | None = None, limit: int | None = None, languages: list[str] | None = None) -> list[SpecTask]:
    """The tasks, by language (python, typescript, java) then name. `only`: comma-separated ids or
    names ("python/01_slugify", "01_slugify", "slugify")."""
    wanted = [w.strip() for w in only.split(",") if w.strip()] if only else None
    tasks = []
    for language in languages or LANGUAGES:
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r}: choose from {', '.join(LANGUAGES)}")
        for folder in sorted((ROOT / language).iterdir()):
            if not (folder / "task.md").is_file():
                continue
            task = SpecTask(id=f"{language}/{folder.name}", language=language,
                            text=(folder / "task.md").read_text(encoding="utf-8"),
                            reference=_read(folder / "reference"), heldout=_read(folder / "heldout"))
            if wanted is None or any(w in (task.id, folder.name, folder.name.split("_", 1)[-1]) for w in wanted):
                tasks.append(task)
    if wanted is not None and not tasks:
        raise ValueError(f"no spec task matches {only!r} (ids look like python/01_slugify)")
    return tasks[:limit] if limit else tasks


def _read(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*")) if p.is_file()}


def candidate_files(task: SpecTask, files: Mapping[str, str]) -> dict[str, str]:
    """A candidate's files as judged: every file the model produced except test files (the model's own tests
    never run beside the held-out ones) and files that would replace a held-out test."""
    from workbench.sandbox.runtimes import get_runtime

    runtime = get_runtime(task.language)
    return {n: s for n, s in files.items()
            if not runtime.is_test(PurePosixPath(n).name) and n not in task.heldout and n.endswith(runtime.extensions)}


def judge(task: SpecTask, files: Mapping[str, str], executor: Any = None) -> dict[str, Any]:
    """Run the held-out tests against the candidate's files: passed = every held-out test passed."""
    from workbench.sandbox import Limits
    from workbench.sandbox.runtimes import run_tests

    code = candidate_files(task, files)
    missing = [n for n in task.files if n not in code]
    if not code:
        return {"passed": False, "tests": 0, "tests_passed": 0, "missing": missing, "output": "no code files"}
    run = run_tests(task.language, {**code, **task.heldout}, tests=sorted(task.heldout), executor=executor,
                    limits=Limits(timeout_s=JUDGE_TIMEOUT_S), format=False)
    return _verdict(run, missing)


def _verdict(run: Any, missing: list[str]) -> dict[str, Any]:
    report = run.report
    out = {"passed": bool(run.ok), "tests": report.tests if report else 0,
           "tests_passed": report.passed if report else 0, "missing": missing,
           "failing": [f"{c.id}: {c.message[:160]}" for c in (report.failing() if report else [])][:8]}
    if run.blocked:
        out["output"] = "blocked by the security scan: " + "; ".join(run.notes)
    elif not run.ok and run.result is not None:
        out["output"] = (run.result.stdout[-600:] + "\n" + run.result.stderr[-900:]).strip()
    return out


def check_references(tasks: list[SpecTask], executor: Any = None) -> dict[str, dict[str, Any]]:
    """{task id: verdict} for every task's reference against its held-out tests. One sandbox run per language;
    when that run fails, each of its tasks runs alone, so the verdicts name the broken tasks."""
    from workbench.sandbox import Limits
    from workbench.sandbox.runtimes import run_tests

    verdicts: dict[str, dict[str, Any]] = {}
    for language in LANGUAGES:
        group = [t for t in tasks if t.language == language]
        if not group:
            continue
        files: dict[str, str] = {}
        for t in group:
            folder = t.id.split("/", 1)[1]
            for name, source in {**t.reference, **t.heldout}.items():
                # Python and TypeScript import by path, so each task keeps its own folder; Java's default
                # package needs unique class names, which the set has.
                files[f"{folder}/{name}"] = source
        tests = [f"{t.id.split('/', 1)[1]}/{n}" for t in group for n in sorted(t.heldout)]
        run = run_tests(language, files, tests=tests, executor=executor,
                        limits=Limits(timeout_s=max(JUDGE_TIMEOUT_S, 20.0 * len(group))), format=False)
        expected = sum(_count_tests(t) for t in group)
        if run.ok and run.report.tests >= expected:
            for t in group:
                verdicts[t.id] = {"passed": True, "grouped": True}
            continue
        for t in group:  # name the culprits
            verdicts[t.id] = {**judge(t, t.reference, executor=executor), "grouped": False}
    return verdicts


def _count_tests(task: SpecTask) -> int:
    """A lower bound on the held-out test cases (parametrized ones count once)."""
    import re

    pattern = {"python": r"^\s*def test_\w*\(", "typescript": r"^\s*test\(", "java": r"@Test\b"}[task.language]
    return sum(len(re.findall(pattern, s, re.MULTILINE)) for s in task.heldout.values())
