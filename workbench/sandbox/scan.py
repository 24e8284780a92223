"""Static security scan of generated Python (bandit) before it runs.

Findings travel with the run's result; HIGH-severity ones (shell injection, `os.system`, weak
TLS, ...) block the run unless the caller allows them. The sandbox holds either way: the scan is
a second opinion that tells the model (and the user) what it wrote, not the isolation itself.
Bandit only parses the code (AST), so running it on the host is safe.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

# B101 (assert used) is how tests are written; reporting it on every test file is noise.
DEFAULT_SKIP = ("B101",)
BLOCKING_SEVERITY = "HIGH"


@dataclass
class Finding:
    test_id: str  # e.g. B602
    name: str  # e.g. subprocess_popen_with_shell_equals_true
    severity: str  # LOW | MEDIUM | HIGH
    confidence: str
    file: str
    line: int
    text: str
    more_info: str = ""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.test_id} [{self.severity}] {self.text}"


@dataclass
class ScanReport:
    tool: str
    findings: list[Finding] = field(default_factory=list)
    unparsed: list[str] = field(default_factory=list)  # files bandit could not parse (syntax errors)
    duration_s: float = 0.0
    allowed_high: bool = False  # the caller let HIGH findings run

    @property
    def high(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == BLOCKING_SEVERITY]

    @property
    def blocks(self) -> bool:
        return bool(self.high) and not self.allowed_high

    def as_dict(self) -> dict:
        d = asdict(self)
        d["blocks"] = self.blocks
        return d


def scan_python(files: Mapping[str, str | bytes], *, allow_high: bool = False,
                skip: tuple[str, ...] = DEFAULT_SKIP) -> ScanReport:
    """Bandit over every .py file in `files` (relative path -> source)."""
    logging.getLogger("bandit").setLevel(logging.ERROR)  # bandit logs parse problems itself
    logging.getLogger("stevedore").setLevel(logging.CRITICAL)  # "could not load 'sarif'": an unused formatter
    import bandit
    from bandit.core import config, docs_utils, manager

    start = time.perf_counter()
    report = ScanReport(tool=f"bandit {bandit.__version__}", allowed_high=allow_high)
    sources = {name: data for name, data in files.items() if name.endswith(".py")}
    if not sources:
        return report
    with tempfile.TemporaryDirectory(prefix="workbench-scan-") as tmp:
        root = Path(tmp)
        for name, data in sources.items():
            path = root / PurePosixPath(name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data.encode() if isinstance(data, str) else data)
        conf = config.BanditConfig()
        mgr = manager.BanditManager(conf, "file", quiet=True, profile={"exclude": list(skip)})
        mgr.discover_files([str(root)], recursive=True)
        mgr.run_tests()
        for issue in mgr.get_issue_list():
            report.findings.append(Finding(
                test_id=issue.test_id, name=issue.test, severity=issue.severity, confidence=issue.confidence,
                file=Path(issue.fname).relative_to(root).as_posix(), line=issue.lineno, text=issue.text,
                more_info=docs_utils.get_url(issue.test_id)))
        report.unparsed = [Path(name).relative_to(root).as_posix() for name, _ in mgr.skipped]
    report.findings.sort(key=lambda f: ({"HIGH": 0, "MEDIUM": 1}.get(f.severity, 2), f.file, f.line))
    report.duration_s = time.perf_counter() - start
    return report
