"""Regenerate environment.yml (conda) from pyproject.toml so the two never drift (run by `make lock`)."""

import tomllib
from pathlib import Path

root = Path(__file__).resolve().parent.parent
project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
deps = project["dependencies"] + project["optional-dependencies"]["test"]
lines = [
    "# Conda environment mirroring pyproject.toml (pip installs from requirements.lock are what the tests ran with).",
    "# conda env create -f environment.yml && conda activate workbench && pip install -e . --no-deps",
    "name: workbench", "channels:", "  - conda-forge", "dependencies:", "  - python=3.11", "  - pip",
    "  - nodejs=20", "  - openjdk=17", "  - pip:",
] + [f'      - "{d}"' for d in deps]
(root / "environment.yml").write_text("\n".join(lines) + "\n")
