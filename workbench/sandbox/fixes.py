"""What is missing for a language's runtime and the one command that installs it.

Below the runtimes and the component probes (workbench.sandbox.components), which both raise and report
with it; it imports nothing else of the sandbox.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable
from pathlib import Path

from workbench.errors import SandboxError

MIN_NODE_MAJOR = 20  # the sandbox uses node 20's test runner reporters and --disable-warning
JDK_PACKAGE = "default-jdk-headless"  # Debian 12: OpenJDK 17
BASE_PYTHON = Path("/usr/bin/python3.11")  # the toolchain's venv is built on Debian's Python


class RuntimeUnavailable(SandboxError):
    """A language's runtime is not installed here; nothing was run. The message ends with the fix."""

    http_status = 503

    def __init__(self, language: str, missing: list[str], fix: str):
        self.language, self.missing, self.fix = language, missing, fix
        super().__init__(f"The {language} runtime is unavailable here ({', '.join(missing)} missing), so nothing "
                         f"was run. Fix: {fix}")


def apt_install(*packages: str) -> str:
    command = "apt-get install -y " + " ".join(packages)
    return command if os.geteuid() == 0 else f"sudo {command}"


def toolchain_fix() -> str:
    return ("make toolchain (runs scripts/setup-toolchain.sh; it installs Node.js from PyPI when no node >= "
            f"{MIN_NODE_MAJOR} is on PATH)")


def _base_python_ok() -> bool:
    """Debian splits venv/ensurepip off into python3.11-venv; without it the toolchain has no Python."""
    if not BASE_PYTHON.exists():
        return False
    done = subprocess.run([str(BASE_PYTHON), "-c", "import venv, ensurepip"], capture_output=True, timeout=20,
                          check=False)
    return done.returncode == 0


def missing_tools_fix(language: str, missing: Iterable[str]) -> str:
    """The command that installs the tools (keys of Toolchain.paths()) a runtime lacks."""
    missing = set(missing)
    if language == "java":
        packages = ([JDK_PACKAGE] if missing & {"javac", "java"} else []) + (["junit5"] if "junit" in missing else [])
        return apt_install(*(packages or [JDK_PACKAGE, "junit5"]))
    if language == "python" and not _base_python_ok():
        return f"{apt_install('python3.11-venv')}, then {toolchain_fix()}"
    return toolchain_fix()
