"""Where the sandbox's runtimes live: the toolchain directory (scripts/setup-toolchain.sh) on the host,
bound read-only at the same path inside the sandbox, plus the system's JDK and JUnit."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

JUNIT_JAR = "/usr/share/java/junit-platform-console-standalone.jar"
JAVAC, JAVA = "/usr/bin/javac", "/usr/bin/java"


@dataclass(frozen=True)
class Toolchain:
    """Where the runtimes live on the host (and, bound read-only at the same path, in the sandbox)."""

    root: Path

    @classmethod
    def from_settings(cls) -> Toolchain:
        from workbench.config import get_settings

        return cls(Path(get_settings().toolchain_dir))

    def paths(self) -> dict[str, str]:
        node_modules = self.root / "node" / "node_modules"
        # bin/node is the node setup chose (the system's when >= 20 and under /usr, else PyPI's), so
        # the sandbox runs exactly the node the toolchain's packages were installed with.
        return {"python": str(self.root / "python" / "bin" / "python"), "node": str(self.root / "node" / "bin" / "node"),
                "tsx": str(node_modules / ".bin" / "tsx"), "prettier": str(node_modules / "prettier" / "bin" / "prettier.cjs"),
                "javac": JAVAC, "java": JAVA, "junit": JUNIT_JAR}

    def stamp(self) -> dict:
        try:
            return json.loads((self.root / "stamp.json").read_text())
        except (OSError, ValueError):
            return {}
