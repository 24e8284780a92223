"""What the sandbox and the browser need from this machine, one component at a time: whether it is
available, what was found, and the one command that installs what is missing.

    for c in components():
        c.name, c.available, c.detail, c.fix
    unavailable_line()    # one plain-text line for the dashboards, "" when nothing is missing

`workbench doctor` (workbench.sandbox.health), the dashboards' status line and the runtimes' own errors
all read this module, so they say the same thing. None of these components is needed for chat, tasks
and dashboards on the local model: a missing one is "unavailable" with its fix, never a crash.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from workbench.sandbox.fixes import (  # noqa: F401 - RuntimeUnavailable is part of this module's interface
    MIN_NODE_MAJOR,
    RuntimeUnavailable,
    apt_install,
    missing_tools_fix,
    toolchain_fix,
)


@dataclass(frozen=True)
class Component:
    name: str
    available: bool
    detail: str
    fix: str = ""  # the command that installs what is missing ("" when available)


# --- one function per component ------------------------------------------------------------------


def _toolchain():
    from workbench.sandbox.toolchain import Toolchain

    return Toolchain.from_settings()


def _in_docker() -> bool:
    from workbench.config import get_settings

    return (get_settings().sandbox or "").strip().lower() == "docker"


def bubblewrap(probe: bool = True) -> Component:
    from workbench.sandbox.bwrap import BwrapExecutor

    exe = shutil.which("bwrap")
    if not exe:
        return Component("sandbox (bubblewrap)", False, "bwrap is not installed: no code can run isolated",
                         apt_install("bubblewrap"))
    ok, why = BwrapExecutor.available()  # cached for the process: one bwrap start
    if not ok:
        return Component("sandbox (bubblewrap)", False, why,
                         "sysctl -w user.max_user_namespaces=15000 (or run workbench as root)")
    return Component("sandbox (bubblewrap)", True, why)


def _missing(tools: dict[str, str], keys: Iterable[str]) -> list[str]:
    return [k for k in keys if not Path(tools[k]).exists()]


def _runtime(language: str, build: Callable[[dict[str, str]], Component]) -> Component:
    from workbench.sandbox.runtimes import get_runtime

    name = f"{language} runtime"
    if _in_docker():
        return Component(name, True, "runs in the sandbox's Docker image (WORKBENCH_SANDBOX=docker)")
    tools = _toolchain().paths()
    missing = _missing(tools, get_runtime(language).tools)
    if missing:
        return Component(name, False, "missing: " + ", ".join(f"{k} ({tools[k]})" for k in missing),
                         missing_tools_fix(language, missing))
    return build(tools)


def python_runtime(probe: bool = True) -> Component:
    def found(tools: dict[str, str]) -> Component:
        stamp = _toolchain().stamp()
        versions = f"Python {stamp.get('python', '?')}, pytest {stamp.get('pytest', '?')}" if stamp else "no stamp.json"
        return Component("python runtime", True, f"{versions} ({tools['python']})")

    return _runtime("python", found)


def node_origin(node: str | Path) -> str:
    """Where the toolchain's node came from, as setup-toolchain.sh recorded it."""
    try:
        return (Path(node).parent.parent / "origin").read_text().strip()
    except OSError:
        return "origin not recorded"


def node_version(node: str | Path) -> tuple[int, str]:
    """(major, "v24.19.0") of a node binary; (0, why) when it does not run."""
    try:
        done = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 0, f"{node} does not run ({exc})"
    match = re.match(r"v(\d+)\.", done.stdout.strip())
    return (int(match.group(1)), done.stdout.strip()) if match else (0, f"{node} --version: {done.stderr.strip()[:200]}")


def typescript_runtime(probe: bool = True) -> Component:
    def found(tools: dict[str, str]) -> Component:
        origin = node_origin(tools["node"])
        if not probe:
            return Component("typescript runtime", True, f"node from {origin}")
        major, version = node_version(tools["node"])
        if major < MIN_NODE_MAJOR:
            return Component("typescript runtime", False,
                             f"{version}: the sandbox needs node >= {MIN_NODE_MAJOR} (node from {origin})",
                             toolchain_fix())
        stamp = _toolchain().stamp()
        return Component("typescript runtime", True,
                         f"node {version} from {origin}; tsx {stamp.get('tsx', '?')} ({tools['node']})")

    return _runtime("typescript", found)


def _jdk_version(javac: str) -> str:
    """The JDK's version from its `release` file (running javac costs a JVM start)."""
    release = Path(os.path.realpath(javac)).parent.parent / "release"
    try:
        match = re.search(r'^JAVA_VERSION="([^"]+)"', release.read_text(), re.MULTILINE)
    except OSError:
        match = None
    return f"JDK {match.group(1)}" if match else f"JDK at {os.path.realpath(javac)}"


def java_runtime(probe: bool = True) -> Component:
    return _runtime("java", lambda tools: Component(
        "java runtime", True, f"{_jdk_version(tools['javac'])}; JUnit 5 console ({tools['junit']})"))


def browser(probe: bool = True) -> Component:
    from workbench.config import get_settings

    path = get_settings().chromium
    if not (path.exists() and os.access(path, os.X_OK)):
        return Component("browser (chromium)", False, f"{path} not found: browser tests and screenshots are off",
                         apt_install("chromium"))
    if not probe:
        return Component("browser (chromium)", True, str(path))
    done = subprocess.run([str(path), "--version"], capture_output=True, text=True, timeout=20, check=False)
    return Component("browser (chromium)", True, done.stdout.strip() or str(path))


COMPONENTS: tuple[Callable[..., Component], ...] = (bubblewrap, python_runtime, typescript_runtime, java_runtime,
                                                     browser)


def components(probe: bool = True) -> list[Component]:
    """Every component; probe=False skips running binaries (file checks only, plus the cached bwrap probe)."""
    return [fn(probe) for fn in COMPONENTS]


_LINE_CACHE: dict[str, tuple[float, str]] = {}
_LINE_LOCK = threading.Lock()


def unavailable_line(max_age_s: float = 60.0) -> str:
    """One plain-text line naming every unavailable component and its fix ("" when all are there).
    Cached per toolchain directory: every dashboard page shows it, so it must cost nothing per page."""
    key = str(_toolchain().root)
    with _LINE_LOCK:
        hit = _LINE_CACHE.get(key)
        if hit is not None and time.monotonic() - hit[0] < max_age_s:
            return hit[1]
    missing = [c for c in components(probe=False) if not c.available]
    line = ""
    if missing:
        line = ("Unavailable here: " + "; ".join(f"{c.name} (fix: {c.fix})" for c in missing)
                + ". Chat, tasks and dashboards work without them; `workbench doctor` has the details.")
    with _LINE_LOCK:
        _LINE_CACHE[key] = (time.monotonic(), line)
    return line
