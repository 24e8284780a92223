"""Markdown in the served pages renders text, never raw HTML.

Prompts, titles, answers, plans, model replies and error messages are data: a task whose prompt is
`<img src=x onerror=...>` must show those characters, not run them. Panel's Markdown pane (markdown-it,
"gfm-like") passes raw HTML through by default, and Alert and the chat messages are Markdown panes too, so
the default is changed for every Markdown pane here: raw HTML in the source is escaped and shown literally.
Markdown itself (emphasis, tables, code fences, links) still renders; markdown-it refuses javascript: and
data: links. Pages that need markup build it with `pn.pane.HTML` and escape every value they put in it.
"""

from __future__ import annotations

import panel as pn

SAFE_OPTIONS = {"html": False}


def render_markdown_as_data() -> None:
    """Make every Markdown pane (Alert and chat messages included) escape raw HTML unless told otherwise."""
    pn.pane.Markdown.param.renderer_options.default = dict(SAFE_OPTIONS)
