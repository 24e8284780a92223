"""A WORKBENCH_PLUGINS module for the notebook helpers' tests: deterministic models on the Dask workers.

    test:picky   echoes the prompt, and fails (a ProviderError) when the prompt contains "fail"
    test:sluggish   echoes after SLOW_S seconds when the prompt contains "slow" (an unusual latency)
"""

from __future__ import annotations

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
