"""Served Panel pages: one Viewer class per page, each registered with `dashboards.pages.page`."""

from __future__ import annotations

from typing import Callable

from dashboards.pages import PAGES


def load_pages() -> dict[str, tuple[str, Callable[[], object]]]:
    """Every page, by route. Imported here, not when the package is, so that a notebook importing one
    page does not load them all; a page that cannot be imported is an error."""
    from dashboards import anomalies, chat, costs, models, monitoring, prediction, tasks  # noqa: F401

    return PAGES
