"""Evaluated prompt prefixes kept on disk, for the next model host of the same model.

A `PrefixStore` lives as long as its model host: every `workbench run`, every Dask worker and every
restart of the server starts a new host that evaluates the same system prompts again (the router's
prompt is about 170 tokens: 2-3 s for the 1.5B on two cores). The shelf keeps the store's snapshots in
a directory so that a new host restores them instead.

One file per snapshot, named by a hash of its tokens and written atomically (a temporary file, then
rename), so hosts of several processes share a directory without locks: a reader sees a whole file or
none. The directory is per model file, context size, llama.cpp version and CPU features (KV values
differ between builds and kernels, and a snapshot must give the very same answer as evaluating). The
oldest files (by last use) go first when the shelf holds more than its capacity.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

MAGIC = b"WBKV1\n"
_COUNT = struct.Struct("<I")
SUFFIX = ".kv"


@dataclass(frozen=True)
class ShelfEntry:
    tokens: npt.NDArray[np.intc]
    path: Path


class SnapshotShelf:
    """Snapshots (tokens, KV bytes) in `directory`, at most `capacity_bytes` of files in all."""

    def __init__(self, directory: str | Path, capacity_bytes: int):
        if capacity_bytes <= 0:
            raise ValueError(f"capacity_bytes must be positive (got {capacity_bytes}); to keep no snapshots "
                             "on disk, do not create a SnapshotShelf")
        self.directory, self.capacity_bytes = Path(directory), capacity_bytes
        self._index: dict[str, ShelfEntry] = {}
        self._seen: tuple[int, int] | None = None  # (mtime_ns, inode) of the directory when last read

    def entries(self) -> list[ShelfEntry]:
        """Every snapshot on the shelf (read again only when the directory changed)."""
        try:
            stat = self.directory.stat()
        except FileNotFoundError:
            return []
        if self._seen != (stat.st_mtime_ns, stat.st_ino):
            self._seen = (stat.st_mtime_ns, stat.st_ino)
            known = dict(self._index)
            self._index = {}
            for path in self.directory.glob(f"*{SUFFIX}"):
                entry = known.get(path.name) or _read_tokens(path)
                if entry is not None:
                    self._index[path.name] = entry
        return list(self._index.values())

    def load(self, entry: ShelfEntry) -> bytes | None:
        """The KV bytes of `entry`, None if another host pruned it meanwhile; its use is recorded (LRU)."""
        try:
            with open(entry.path, "rb") as f:
                f.seek(len(MAGIC) + _COUNT.size + entry.tokens.nbytes)
                data = f.read()
            os.utime(entry.path)
        except FileNotFoundError:
            return None
        return data

    def holds(self, tokens: npt.ArrayLike) -> bool:
        return (self.directory / _name(tokens)).exists()

    def put(self, tokens: npt.ArrayLike, data: bytes) -> bool:
        """Keep a snapshot (False when it alone is larger than the shelf), dropping the files it makes useless
        (snapshots of a prefix of its tokens) and the least recently used ones beyond the capacity."""
        tokens = np.asarray(tokens, dtype=np.intc)
        if len(MAGIC) + _COUNT.size + tokens.nbytes + len(data) > self.capacity_bytes:
            return False
        self.directory.mkdir(parents=True, exist_ok=True)
        for entry in self.entries():
            n = len(entry.tokens)
            if n < len(tokens) and np.array_equal(entry.tokens, tokens[:n]):
                entry.path.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".writing-")
        with os.fdopen(fd, "wb") as f:
            f.write(MAGIC + _COUNT.pack(len(tokens)) + tokens.tobytes() + data)
        os.replace(tmp, self.directory / _name(tokens))
        self._prune()
        return True

    def _prune(self) -> None:
        files = []
        for path in self.directory.glob(f"*{SUFFIX}"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            files.append((stat.st_mtime_ns, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        for _, size, path in sorted(files):
            if total <= self.capacity_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size


def shelf_directory(root: str | Path, model_path: str | Path, n_ctx: int, build: str) -> Path:
    """Where one model's snapshots go: a directory per model file (name and size), context size and build
    (llama.cpp version and CPU features, hashed)."""
    model = Path(model_path)
    size = model.stat().st_size if model.exists() else 0
    tag = hashlib.sha256(f"{model.name}|{size}|{n_ctx}|{build}".encode()).hexdigest()[:16]
    return Path(root) / f"{model.stem}-{tag}"


def _name(tokens: npt.ArrayLike) -> str:
    return hashlib.sha256(np.asarray(tokens, dtype=np.intc).tobytes()).hexdigest()[:32] + SUFFIX


def _read_tokens(path: Path) -> ShelfEntry | None:
    """A file's tokens (its header), None if it is not a whole snapshot file or is gone."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(MAGIC) + _COUNT.size)
            if len(head) < len(MAGIC) + _COUNT.size or not head.startswith(MAGIC):
                return None
            (count,) = _COUNT.unpack(head[len(MAGIC):])
            raw = f.read(count * np.dtype(np.intc).itemsize)
    except FileNotFoundError:
        return None
    if len(raw) != count * np.dtype(np.intc).itemsize:
        return None
    return ShelfEntry(np.frombuffer(raw, dtype=np.intc).copy(), path)
