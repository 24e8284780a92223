"""A WORKBENCH_PLUGINS module for the Experiments page tests: `test:arm_b_markup` passes and fails the cases
experiment_plugins' `test:arm_b` does, but each wrong answer carries markup, so the page's per-case diff has model
output that would run if it were rendered as HTML."""

from __future__ import annotations

import re

from workbench.testing import register_function

MARKUP = '<img src=x onerror="document.title=\'pwned\'">'


def arm_b_markup(messages, options):
    n = int(re.search(r"case (\d+)", messages[-1]["content"]).group(1))
    return "yes" if n < 36 or n >= 48 else f"{MARKUP}no"


register_function("arm_b_markup", arm_b_markup)
