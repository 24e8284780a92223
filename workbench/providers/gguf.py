"""Models a user brings: any GGUF file, as `local:/path/to/model.gguf` or under a name given with
`workbench models add NAME --gguf PATH` (recorded in `<home>/user_models.json`).

A file is checked before anything loads it: it must exist and start with the GGUF magic bytes, then it must
load and generate a token in a child process (`workbench.smoke`), so llama.cpp never enters the caller's
process and a file that crashes llama.cpp is one clear error. A successful check is remembered by the
file's path, size and modification time, so it runs once per file version. Calls are priced by CPU time
like the built-in local models (the model host measures it).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from workbench import smoke
from workbench.config import get_settings
from workbench.errors import WeightsError

MAGIC = b"GGUF"
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
VERIFY_TOKENS = 1


class NotGGUF(WeightsError):
    """A path that is no usable GGUF file: missing, not a file, unreadable or without the GGUF magic."""


@dataclass(frozen=True)
class Brought:
    """One model a user added: its name (`local:NAME`) and the GGUF file it runs."""

    name: str
    path: str


def is_path(name: str) -> bool:
    """Whether a `local:` name is a file path rather than a catalog or added name."""
    return name.startswith(("/", "./", "../", "~")) or name.lower().endswith(".gguf")


def check_file(path: str | Path) -> Path:
    """The resolved path of a file that starts with the GGUF magic bytes; NotGGUF (one line, how to fix) else."""
    given = Path(path).expanduser()
    if not given.exists():
        raise NotGGUF(f"No such file: {given}. Give the path of a .gguf model file.")
    if not given.is_file():
        raise NotGGUF(f"{given} is not a file. Give the path of a .gguf model file, not a folder.")
    try:
        with open(given, "rb") as f:
            head = f.read(len(MAGIC))
    except OSError as exc:
        raise NotGGUF(f"Cannot read {given}: {exc.strerror}. Check its permissions.") from None
    if head != MAGIC:
        raise NotGGUF(f"{given} is not a GGUF file (it starts with {head!r}, not b'GGUF'). llama.cpp loads GGUF "
                      f"models only: convert it with llama.cpp's convert_hf_to_gguf.py, or download a .gguf file.")
    return given.absolute()  # a symlink stays one: the user chose that path


def _identity(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": int(st.st_mtime_ns)}


def _verified_file() -> Path:
    return get_settings().home / "gguf_verified.json"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def verify(path: str | Path) -> Path:
    """check_file, then (once per file version) load it and generate a token in a child process."""
    resolved = check_file(path)
    record = _read(_verified_file())
    if record.get(str(resolved)) == _identity(resolved):
        return resolved
    result = smoke.run(str(resolved), resolved, tokens=VERIFY_TOKENS, threads=min(2, os.cpu_count() or 1))
    if not result.ok:
        # smoke's own fix for a failed load names `models pull`, which is for the catalog's models only
        fix = f"; {result.fix}" if result.fix.startswith("rebuild") else ": is the file complete and a model?"
        raise WeightsError(f"{resolved} did not load in llama.cpp ({result.detail}){fix}")
    record[str(resolved)] = _identity(resolved)
    _write(_verified_file(), record)
    return resolved


def _registry_file() -> Path:
    return get_settings().home / "user_models.json"


def added() -> dict[str, Brought]:
    """The models added with `workbench models add`, by name."""
    return {name: Brought(name, entry["path"]) for name, entry in _read(_registry_file()).items()
            if isinstance(entry, dict) and isinstance(entry.get("path"), str)}


def add(name: str, path: str | Path, reserved: set[str]) -> Brought:
    """Verify the file and record it as `local:NAME`; `reserved` are names already taken (the catalog's)."""
    if not NAME.match(name):
        raise WeightsError(f"Invalid model name {name!r}: use lowercase letters, digits, '.', '_' and '-' "
                           f"(at most 64, starting with a letter or digit), e.g. my-model-q4.")
    if name in reserved:
        raise WeightsError(f"local:{name} is a built-in model: choose another name for your file.")
    resolved = verify(path)
    brought = Brought(name, str(resolved))
    registry = _read(_registry_file())
    registry[name] = {k: v for k, v in asdict(brought).items() if k != "name"}
    _write(_registry_file(), registry)
    return brought


def status(path: str | Path) -> tuple[bool, str]:
    """(usable, reason) without loading anything: the file is there, GGUF, and verified in this version."""
    try:
        resolved = check_file(path)
    except NotGGUF as exc:
        return False, str(exc)
    if _read(_verified_file()).get(str(resolved)) != _identity(resolved):
        return True, "GGUF; loads are checked at first use (the file is new or changed)"
    return True, "verified"
