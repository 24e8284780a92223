"""A WORKBENCH_PLUGINS module for the notebook helpers' tests: deterministic models on the Dask workers.

    test:picky   echoes the prompt, and fails (a ProviderError) when the prompt contains "fail"
    test:sluggish   echoes after SLOW_S seconds when the prompt contains "slow" (an unusual latency)
    test:calc, test:calc_sloppy   answer "What is A + B?": always right; right only when A is even
"""

from __future__ import annotations

import re
import time

from workbench.errors import ProviderError
from workbench.testing import register_function

SLOW_S = 0.8


def picky(messages, options):
    text = messages[-1]["content"]
    if "fail" in text:
        return ProviderError(f"picky refuses {text!r}")
    return text


def sluggish(messages, options):
    text = messages[-1]["content"]
    time.sleep(SLOW_S if "slow" in text else 0.0)
    return text


register_function("picky", picky)
register_function("sluggish", sluggish)


def _sum(messages) -> tuple[int, int]:
    a, b = re.search(r"What is (\d+) \+ (\d+)\?", messages[-1]["content"]).groups()
    return int(a), int(b)


def calc(messages, options):
    """Adds the two numbers of "What is A + B?" correctly."""
    a, b = _sum(messages)
    return str(a + b)


def calc_sloppy(messages, options):
    """Adds them correctly only when A is even: a known answer table for an experiment."""
    a, b = _sum(messages)
    return str(a + b if a % 2 == 0 else a + b + 1)


register_function("calc", calc)
register_function("calc_sloppy", calc_sloppy)
