"""Served Panel pages: one Viewer class per page, each registered with `dashboards.pages.page`."""

from __future__ import annotations

from typing import Callable

from dashboards.markdown_policy import render_markdown_as_data
from dashboards.pages import PAGES

render_markdown_as_data()  # before any page makes a pane: user input and model output are text


def load_pages() -> dict[str, tuple[str, Callable[[], object]]]:
    """Every page, by route. Imported here, not when the package is, so that a notebook importing one
    page does not load them all; a page that cannot be imported is an error."""
    from dashboards import anomalies, chat, costs, experiments, memory, models, monitoring, pipelines, prediction, tasks  # noqa: F401,E501

    return PAGES
