"""Project files agree with each other: environment.yml mirrors pyproject, the lock pins what pyproject asks."""

from __future__ import annotations

import tomllib

import yaml

from helpers import REPO


def _name(req: str) -> str:
    import re

    return re.split(r"[\[<>=!~ ;]", req, maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_mirrors_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_name(d) for d in project["dependencies"] + project["optional-dependencies"]["test"]}
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert {_name(d) for d in pip} == wanted


def test_lock_pins_every_dependency():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    locked = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            locked[_name(name)] = version
    # the memory extra too: `make venv` installs the lock, so the embedder is there by default
    wanted = project["dependencies"] + project["optional-dependencies"]["memory"]
    missing = [_name(d) for d in wanted if _name(d) not in locked]
    assert not missing, f"requirements.lock lacks {missing}: run `make lock`"
    assert all("==" in line for line in (REPO / "requirements.lock").read_text().splitlines() if line.strip())
