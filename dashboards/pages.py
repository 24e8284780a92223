"""The page registry: `@page(route, title)` adds a page factory to PAGES (the served app mounts them)."""

from __future__ import annotations

from typing import Callable

PAGES: dict[str, tuple[str, Callable[[], object]]] = {}


def page(route: str, title: str) -> Callable:
    """Register a page factory under a route (used by the served app and the tests)."""

    def decorate(factory: Callable[[], object]) -> Callable[[], object]:
        PAGES[route] = (title, factory)
        return factory

    return decorate
