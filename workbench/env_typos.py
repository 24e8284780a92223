"""Unknown WORKBENCH_* variables: a typo (WORKBENCH_SANDBOX_TIMOUT_S) would otherwise leave the default in
force without a word. Each one is logged once per process, with the closest known name.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Iterable, Mapping

log = logging.getLogger("workbench.config")

PREFIX = "WORKBENCH_"
# Read outside Settings: by setup scripts, the llama.cpp build and the tests.
OTHER_VARIABLES = frozenset({"WORKBENCH_WHEELHOUSE", "WORKBENCH_SYSTEM_PACKAGES", "WORKBENCH_TOOLCHAIN_PYTHON",
                             "WORKBENCH_TEST_SLOW_S", "WORKBENCH_TEST_MODEL"})
_WARNED: set[str] = set()


def unknown(environ: Mapping[str, str], known: Iterable[str]) -> list[tuple[str, str | None]]:
    """(variable, closest known name or None) for every WORKBENCH_* variable that nothing reads."""
    names = sorted({n for n in known if n.startswith(PREFIX)} | OTHER_VARIABLES)
    found = []
    for variable in sorted(environ):
        if variable.startswith(PREFIX) and variable not in names:
            close = difflib.get_close_matches(variable, names, n=1, cutoff=0.75)
            found.append((variable, close[0] if close else None))
    return found


def warn_unknown(known: Iterable[str], environ: Mapping[str, str] | None = None) -> list[str]:
    """Log each unknown WORKBENCH_* variable once (one line, the closest known name); returns the lines logged."""
    lines = []
    for variable, close in unknown(os.environ if environ is None else environ, known):
        if variable in _WARNED:
            continue
        _WARNED.add(variable)
        hint = f"did you mean {close}?" if close else "`workbench config` lists the known settings."
        lines.append(f"Unknown setting {variable} is ignored; {hint}")
        log.warning(lines[-1])
    return lines
