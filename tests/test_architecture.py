"""The layering of docs/architecture.md, enforced: import-linter's contracts (pyproject.toml), no import
cycles among workbench modules, and components imported plainly so a broken import is an error.

Every import counts, at the top of a file or inside a function: a function-level import defers loading
(a heavy or optional dependency), it does not make an upward dependency or a cycle acceptable.
"""

from __future__ import annotations

import importlib
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import grimp
import pytest
from importlinter.cli import lint_imports

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def imports() -> dict[str, set[str]]:
    """Every workbench module (packages' __init__ included) and the modules it imports directly."""
    graph = grimp.build_graph("workbench", "dashboards", cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def cycles(imports: dict[str, set[str]]) -> list[str] | None:
    """The modules of one import cycle, the first repeated at the end, or None."""
    try:
        TopologicalSorter(imports).prepare()
    except CycleError as exc:
        return list(reversed(exc.args[1]))  # graphlib lists dependencies before their importers
    return None


def test_the_layers_contract_is_kept(capsys):
    exit_code = lint_imports(config_filename=str(REPO / "pyproject.toml"), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert exit_code == 0, (
        f"{report}\nA module imports from a layer above its own (docs/architecture.md). Move the shared "
        f"code down to the lower layer, or the importing code up.")
    assert "1 kept" in report  # the contract was read and checked, not skipped


def test_no_import_cycles(imports):
    found = cycles(imports)
    assert found is None, (f"Import cycle: {' -> '.join(found)}. Move what both sides need into a module "
                           f"below them both (a function-level import hides the cycle, it does not break it).")


def test_imports_inside_a_package_are_in_the_graph(imports):
    # A cycle inside a package (submodules importing their package's __init__, which imports them back)
    # is caught only if those edges are in the graph, function-level imports included.
    assert "workbench.sandbox.executor" in imports["workbench.sandbox.bwrap"]
    assert "workbench.sandbox" in imports["workbench.sandbox.runtimes"]
    assert "workbench.sandbox.bwrap" in imports["workbench.sandbox"]  # imported inside _backends()


def test_the_cycle_check_names_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) in (
        ["a", "b", "c", "a"], ["b", "c", "a", "b"], ["c", "a", "b", "c"])


@pytest.mark.parametrize("importer, broken", [
    ("workbench.cli", "workbench.cli.db"),
    ("workbench.server.app", "workbench.server.api_plans"),
    ("workbench.doctor", "workbench.store.health"),
])
def test_a_component_that_cannot_be_imported_is_an_error(monkeypatch, importer, broken):
    importlib.import_module(importer)
    parent, _, name = broken.rpartition(".")
    monkeypatch.delattr(sys.modules[parent], name, raising=False)  # else `from parent import name` finds it
    monkeypatch.delitem(sys.modules, importer)
    monkeypatch.setitem(sys.modules, broken, None)  # importing it now raises ModuleNotFoundError
    with pytest.raises(ModuleNotFoundError, match=broken.replace(".", r"\.")):
        importlib.import_module(importer)


def test_a_page_that_cannot_be_imported_is_an_error(monkeypatch):
    import dashboards

    dashboards.load_pages()
    monkeypatch.delattr(dashboards, "costs")
    monkeypatch.setitem(sys.modules, "dashboards.costs", None)
    with pytest.raises(ModuleNotFoundError, match=r"dashboards\.costs"):
        dashboards.load_pages()
