"""Parse what test runners leave in the work directory: JUnit XML (pytest, node's test runner,
the JUnit 5 console launcher all write it) and coverage (coverage.py JSON, lcov).

The files come out of the sandbox, so they are untrusted: they are size-capped by the executor,
parsed with the stdlib expat parser (no external entities; expat >= 2.4 also refuses "billion
laughs" expansion), and anything malformed yields an empty report, never an exception.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field

STATUS_ORDER = ("passed", "failed", "error", "skipped")
# pytest writes no type= attribute; its text ends with "file.py:9: AssertionError" or "E   KeyError: 'x'".
_PYTEST_TYPE = re.compile(r"(?::\d+: |^E\s+)([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failure|Warning))\b", re.MULTILINE)


@dataclass
class TestCase:
    __test__ = False  # not a pytest test class

    id: str  # "classname::name", stable across rounds (used to spot a repeated failure)
    name: str
    classname: str
    status: str  # passed | failed | error | skipped
    error_type: str = ""  # e.g. AssertionError, testCodeFailure, org.opentest4j.AssertionFailedError
    message: str = ""
    details: str = ""  # traceback / failure text, capped
    duration_s: float = 0.0


@dataclass
class TestReport:
    __test__ = False

    cases: list[TestCase] = field(default_factory=list)
    source: str = ""  # which file it came from
    problem: str = ""  # why there is no report, when there is none

    def count(self, status: str) -> int:
        return sum(1 for c in self.cases if c.status == status)

    @property
    def tests(self) -> int:
        return len(self.cases)

    @property
    def passed(self) -> int:
        return self.count("passed")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def errors(self) -> int:
        return self.count("error")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def ok(self) -> bool:
        """All tests passed — and there was at least one: zero tests never counts as a pass."""
        return self.passed > 0 and self.failed == 0 and self.errors == 0

    def failing(self) -> list[TestCase]:
        return [c for c in self.cases if c.status in ("failed", "error")]

    def failure_signature(self) -> frozenset[tuple[str, str]]:
        """(test id, error type) of every failing test: equal signatures = the same failure again."""
        return frozenset((c.id, c.error_type) for c in self.failing())

    def as_dict(self) -> dict:
        return {"tests": self.tests, "passed": self.passed, "failed": self.failed, "errors": self.errors,
                "skipped": self.skipped, "ok": self.ok, "source": self.source, "problem": self.problem,
                "cases": [asdict(c) for c in self.cases]}


def parse_junit(data: bytes | str, source: str = "", details_cap: int = 4000) -> TestReport:
    """Every <testcase> in the document, whatever the runner's nesting of <testsuite>s."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        return TestReport(source=source, problem=f"unreadable JUnit XML ({exc})")
    report = TestReport(source=source)
    for case in root.iter("testcase"):
        name = case.get("name", "?")
        classname = case.get("classname", "") or ""
        status, error_type, message, details = "passed", "", "", ""
        for child in case:
            tag = child.tag
            if tag in ("failure", "error"):
                status = "failed" if tag == "failure" else "error"
                message = child.get("message", "") or ""
                text = (child.text or "").strip()
                error_type = child.get("type", "") or _error_type(text, message)
                details = text[-details_cap:]
                break
            if tag == "skipped":
                status = "skipped"
                message = child.get("message", "") or ""
        try:
            duration = float(case.get("time", "0") or 0)
        except ValueError:
            duration = 0.0
        case_id = f"{classname}::{name}" if classname else name
        report.cases.append(TestCase(case_id, name, classname, status, error_type, message[:500], details, duration))
    return report


def _error_type(text: str, message: str) -> str:
    found = _PYTEST_TYPE.findall(text) or _PYTEST_TYPE.findall(message)
    return found[-1] if found else ""


def merge(reports: list[TestReport]) -> TestReport:
    merged = TestReport(source=", ".join(r.source for r in reports if r.source))
    for r in reports:
        merged.cases.extend(r.cases)
    merged.problem = "; ".join(r.problem for r in reports if r.problem)
    return merged


def coverage_py_json(data: bytes) -> float | None:
    """coverage.py's `coverage json`: percent of statements (and branches) covered."""
    try:
        return round(float(json.loads(data)["totals"]["percent_covered"]), 1)
    except (ValueError, KeyError, TypeError):
        return None


def lcov_percent(data: bytes, skip: callable = lambda path: False) -> float | None:
    """Line coverage from an lcov file, counting only files for which skip(path) is false."""
    hit = found = 0
    current_skipped = False
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("SF:"):
            current_skipped = skip(line[3:])
        elif line.startswith("LH:") and not current_skipped:
            hit += int(line[3:] or 0)
        elif line.startswith("LF:") and not current_skipped:
            found += int(line[3:] or 0)
    return round(100.0 * hit / found, 1) if found else None
