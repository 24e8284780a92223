"""The documentation: the README stays a short quickstart whose links resolve, the generated references
(configuration, CLI, REST API from the served app's OpenAPI schema) match the code, and the MkDocs site
builds with --strict (a broken link, a bad anchor or a page missing from the nav fails the build)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO

README_MAX_LINES = 130
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _gen_docs():
    spec = importlib.util.spec_from_file_location("gen_docs", REPO / "scripts" / "gen_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def relative_links(markdown: str) -> list[str]:
    """Every link or image target that is a path in the repository (no scheme, no bare anchor)."""
    text = re.sub(r"```.*?```", "", markdown, flags=re.DOTALL)  # code blocks hold no links
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def broken_links(markdown: str, base: Path) -> list[str]:
    return [t for t in relative_links(markdown) if not (base / t.split("#", 1)[0]).exists()]


def test_readme_is_short():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move detail into docs/.")


def test_every_relative_link_in_the_readme_resolves():
    readme = (REPO / "README.md").read_text()
    assert len(relative_links(readme)) >= 10  # the links into the docs site are found at all
    assert broken_links(readme, REPO) == []


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "here.md").write_text("x")
    text = "[ok](here.md) [anchor](here.md#a) [web](https://example.org) [gone](docs/nowhere.md)\n```\n[no](x.md)\n```"
    assert broken_links(text, tmp_path) == ["docs/nowhere.md"]


def test_measured_numbers_in_the_readme_name_their_results_file():
    # A number with a unit of measure in the README must sit in a paragraph naming benchmarks/results/.
    readme = (REPO / "README.md").read_text()
    prose = re.sub(r"```.*?```", "", readme, flags=re.DOTALL)
    for paragraph in prose.split("\n\n"):
        if re.search(r"\d\s?(ms|s|%|tok/s|×|GB|MB)\b", paragraph):
            assert "benchmarks/results/" in paragraph, f"a measured number without its results file:\n{paragraph}"


def test_results_files_named_in_the_benchmarks_page_exist():
    page = (REPO / "docs" / "benchmarks.md").read_text()
    named = set(re.findall(r"benchmarks/results/([\w.-]+)", page))
    assert len(named) >= 10
    assert [n for n in sorted(named) if not (REPO / "benchmarks" / "results" / n).is_file()] == []


@pytest.mark.parametrize("page", ["configuration", "cli", "rest"])
def test_generated_references_are_current(page):
    gen = _gen_docs()
    path = {"configuration": gen.CONFIG_PAGE, "cli": gen.CLI_PAGE, "rest": gen.REST_PAGE}[page]
    generate = gen.PAGES[path]
    assert path.read_text() == generate(), f"{path.relative_to(REPO)} is out of date: run `make docs`."


def test_every_setting_and_command_is_in_the_references():
    from typer.main import get_command

    from workbench.cli import app
    from workbench.config import Settings

    config = (REPO / "docs" / "reference" / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`WORKBENCH_{name.upper()}`" in config, name
    cli = (REPO / "docs" / "reference" / "cli.md").read_text()
    for name, command in get_command(app).commands.items():
        assert f"`workbench {name}`" in cli
        for sub in getattr(command, "commands", {}):
            assert f"`workbench {name} {sub}`" in cli


def test_every_route_is_in_the_rest_reference():
    from workbench.server.app import create_app

    rest = (REPO / "docs" / "reference" / "rest.md").read_text()
    schema = create_app().openapi()
    routes = [(m.upper(), p) for p, ops in schema["paths"].items() for m, op in ops.items()
              if not _gen_docs()._is_page(op)]
    assert len(routes) >= 10
    assert [r for r in routes if f"### `{r[0]} {r[1]}`" not in rest] == []
    for name in schema["components"]["schemas"]:
        assert f"### `{name}`" in rest, name


def test_check_mode_reports_a_stale_page_and_writes_nothing(tmp_path, monkeypatch, capsys):
    gen = _gen_docs()
    page = tmp_path / "rest.md"
    page.write_text("old\n")
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    monkeypatch.setattr(gen, "PAGES", {page: lambda: "new\n"})
    assert gen.main(["--check"]) == 1
    assert page.read_text() == "old\n" and "Out of date: rest.md" in capsys.readouterr().err
    assert gen.main([]) == 0 and page.read_text() == "new\n"
    assert gen.main(["--check"]) == 0


def _mkdocs() -> list[str]:
    binary = Path(sys.executable).with_name("mkdocs")
    return [str(binary)] if binary.exists() else [shutil.which("mkdocs") or "mkdocs"]


def test_the_site_builds_strictly(tmp_path):
    out = subprocess.run([*_mkdocs(), "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         check=False, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    for page in ("index.html", "benchmarks/index.html", "reference/configuration/index.html",
                 "reference/cli/index.html", "reference/rest/index.html", "architecture/index.html", "redesign/index.html"):
        assert (tmp_path / "site" / page).is_file(), page


def test_a_broken_link_fails_the_strict_build(tmp_path):
    # The same site with one link broken: --strict must refuse it (else the build test proves nothing).
    site = tmp_path / "repo"
    shutil.copytree(REPO / "docs", site / "docs")
    shutil.copy(REPO / "mkdocs.yml", site / "mkdocs.yml")
    page = site / "docs" / "concepts" / "tasks.md"
    page.write_text(page.read_text().replace("(agents.md)", "(agent.md)", 1))
    out = subprocess.run([*_mkdocs(), "build", "--strict", "--site-dir", str(tmp_path / "site")],
                         check=False, cwd=site,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "agent.md" in out.stdout + out.stderr
