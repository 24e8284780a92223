"""Served Panel pages: one Viewer class per page. PAGES maps a route to (title, factory)."""

from __future__ import annotations

from typing import Callable

PAGES: dict[str, tuple[str, Callable[[], object]]] = {}


def page(route: str, title: str) -> Callable:
    """Register a page factory under a route (used by the served app and the tests)."""

    def decorate(factory: Callable[[], object]) -> Callable[[], object]:
        PAGES[route] = (title, factory)
        return factory

    return decorate


def load_pages() -> dict[str, tuple[str, Callable[[], object]]]:
    import importlib

    for module in ("dashboards.chat", "dashboards.tasks", "dashboards.monitoring", "dashboards.costs",
                   "dashboards.anomalies", "dashboards.prediction", "dashboards.models"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:  # a page not in this checkout is skipped, not fatal
            if exc.name != module:
                raise
    return PAGES
