"""Project hygiene: a license, complete package metadata with true URLs, a changelog and a contributing
guide, and no comment, docstring or page that cites a file outside the repository or an issue number."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from helpers import REPO

TEXT_FILES = (".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".ipynb", ".cfg", ".txt", "Makefile", "Dockerfile")
# What a reader of the repository cannot open: notes kept beside it, and issue numbers of a tracker.
OUTSIDE = [
    (re.compile(r"\.\./shared\b|\bshared/[A-Z]+\.md\b"), "a file outside the repository"),
    (re.compile(r"\b(RESEARCH|FACTS|STYLE|DEVELOPERS)(\.md)?\b"), "notes outside the repository"),
    (re.compile(r"\bissues?\s*#?\d+\b", re.IGNORECASE), "an issue number"),
    (re.compile(r"(?<![\w&#/\"'=-])#(?:[1-9]|[12]\d|30)\b(?![\w-])"), "an issue number (#N)"),
]
SKIP = ("benchmarks/results/", "requirements.lock", "tests/test_hygiene.py")


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]


def test_license_is_permissive_and_packaged():
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text
    meta = project()
    assert meta["license"] == "MIT" and meta["license-files"] == ["LICENSE"]


def test_package_metadata_is_complete_and_true():
    meta = project()
    assert (REPO / meta["readme"]).is_file()
    assert meta["description"] and meta["authors"] and meta["keywords"]
    classifiers = meta["classifiers"]
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert not any(c.startswith("License ::") for c in classifiers)  # the SPDX expression says it (PEP 639)
    urls = meta["urls"]
    assert {"Documentation"} <= set(urls)
    for name, url in urls.items():
        assert re.match(r"https?://", url), (name, url)
        assert not re.search(r"example\.|<|>|TODO|your-|\bOWNER\b", url), (name, url)
    # The addresses are where a checkout serves its docs and app: the ports the code uses.
    from workbench.config import Settings

    port = Settings.model_fields["port"].default
    assert urls["Workbench"] == f"http://127.0.0.1:{port}/"
    assert "8000" in urls["Documentation"] and "mkdocs serve" in (REPO / "Makefile").read_text()


def test_changelog_and_contributing_guide():
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert changelog.startswith("# Changelog") and "## Unreleased" in changelog
    guide = (REPO / "CONTRIBUTING.md").read_text()
    for needed in ("make test", "make bench", "tests/test_architecture.py", "[tool.importlinter]", "ruff check"):
        assert needed in guide, needed


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False)
    names = listed.stdout.splitlines() if listed.returncode == 0 else [
        str(p.relative_to(REPO)) for p in REPO.rglob("*") if p.is_file() and ".venv" not in p.parts]
    return [REPO / n for n in names if n.endswith(TEXT_FILES) and not n.startswith(SKIP) and (REPO / n).is_file()]


def citations(text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, what in OUTSIDE:
            match = pattern.search(line)
            if match:
                found.append(f"line {number}: {match.group(0)!r} ({what})")
    return found


def test_no_text_cites_files_outside_the_repository_or_issue_numbers():
    files = tracked_text_files()
    assert len(files) > 100
    found = {str(p.relative_to(REPO)): c for p in files if (c := citations(p.read_text(errors="replace")))}
    assert found == {}, "Reword these (say what the note or issue said, in the project's own terms):\n" + "\n".join(
        f"{path}: {c}" for path, cs in found.items() for c in cs)


def test_the_citation_check_finds_them():
    bad = ("# see ../shared/FACTS.md\n"
           "\"\"\"Fixed for issue 19.\"\"\"\n"
           "# as asked in #7, and RESEARCH notes\n")
    found = " ".join(citations(bad))
    for cited in ("'../shared'", "'FACTS.md'", "'issue 19'", "'#7'", "'RESEARCH'"):
        assert cited in found, cited
    fine = ("color = '#666'  # grey\n"
            "HumanEval/120 and [link](#anchor), `test_fib.py` #include\n"
            "print(x)  # 30 seconds\n")
    assert citations(fine) == []
