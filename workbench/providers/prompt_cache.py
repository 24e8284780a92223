"""Evaluated prompt prefixes kept for reuse: KV snapshots keyed by their tokens, in an LRU bounded in bytes.

Pure bookkeeping (no llama.cpp here): `llama_reuse.ReusingLlama` takes a snapshot of the KV cache after
each prompt is evaluated and, before the next prompt, asks `PrefixStore.best` for the snapshot sharing the
longest prefix with it. Keys are whole prompts, not guessed "static parts": two Director prompts share the
system prompt and schema text, the code loop's rounds share the system prompt and the task text, and the
longest common prefix finds exactly that much, wherever the prompts start to differ.

Memory: each snapshot is the KV cache of its prompt (about 28 KiB per token for qwen2.5-coder-1.5b,
12 KiB for the 0.5b). The store holds at most `capacity_bytes`; the least recently used snapshot goes first,
and a snapshot whose tokens are a prefix of a newer one's is dropped at once (the newer one serves every
prompt the older one could).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from workbench.providers.prompt_shelf import SnapshotShelf

BLOCK = 128  # prompts are evaluated in blocks aligned to multiples of this, and reused in whole blocks only
MIN_TOKENS = BLOCK  # a shorter prompt has no whole block to offer


def whole_blocks(shared: int, prompt_len: int) -> int:
    """How many of a prompt's first `shared` tokens may be reused: whole blocks only, and never the block
    holding the prompt's last token (its logits are needed, and snapshots do not keep logits)."""
    return (min(shared, prompt_len - 1) // BLOCK) * BLOCK if prompt_len > 0 else 0


def common_prefix(a: npt.ArrayLike, b: npt.ArrayLike) -> int:
    """Length of the longest common prefix of two token sequences."""
    x, y = np.asarray(a), np.asarray(b)
    n = min(len(x), len(y))
    if n == 0:
        return 0
    differ = np.flatnonzero(x[:n] != y[:n])
    return int(differ[0]) if len(differ) else n


@dataclass(eq=False)
class Snapshot:
    """The KV state of one evaluated prompt: `data` restores `tokens` into a context."""

    tokens: npt.NDArray[np.intc]
    data: bytes
    hits: int = field(default=0, compare=False)

    @property
    def nbytes(self) -> int:
        return len(self.data) + self.tokens.nbytes


@dataclass
class StoreStats:
    snapshots: int = 0
    bytes: int = 0
    saved: int = 0  # snapshots taken
    restored: int = 0  # snapshots loaded into the context
    evicted: int = 0  # dropped for room (LRU) or because a newer snapshot covers them
    too_big: int = 0  # snapshots larger than the whole capacity, never kept
    shelved: int = 0  # snapshots written to the shelf (disk)
    unshelved: int = 0  # snapshots read from the shelf (written by this host or an earlier one)


class PrefixStore:
    """LRU of Snapshots, at most `capacity_bytes` in all. Not thread-safe (a model host is one thread).
    With a `shelf`, every snapshot kept is also written there, and `best` also looks there: a new host
    starts with what earlier hosts of the same model evaluated (`prompt_shelf`)."""

    def __init__(self, capacity_bytes: int, min_tokens: int = MIN_TOKENS, shelf: SnapshotShelf | None = None):
        if capacity_bytes <= 0:
            raise ValueError(f"capacity_bytes must be positive (got {capacity_bytes}); "
                             "to turn prompt reuse off, do not create a PrefixStore")
        self.capacity_bytes, self.min_tokens, self.shelf = capacity_bytes, min_tokens, shelf
        self._items: collections.OrderedDict[bytes, Snapshot] = collections.OrderedDict()
        self._bytes = 0
        self.stats = StoreStats()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    @staticmethod
    def _key(tokens: npt.ArrayLike) -> bytes:
        return np.asarray(tokens, dtype=np.intc).tobytes()

    def __contains__(self, tokens: npt.ArrayLike) -> bool:
        return self._key(tokens) in self._items

    def wants(self, tokens: npt.ArrayLike) -> bool:
        """Whether a snapshot of `tokens` would be kept (long enough, not already here)."""
        return len(tokens) >= self.min_tokens and tokens not in self  # type: ignore[arg-type]

    def best(self, tokens: npt.ArrayLike) -> tuple[Snapshot | None, int]:
        """The snapshot sharing the longest prefix with `tokens`, and that length (None, 0 when none shares any)."""
        found, length = None, 0
        for snapshot in self._items.values():
            n = common_prefix(snapshot.tokens, tokens)
            if n > length:
                found, length = snapshot, n
        if self.shelf is None:
            return found, length
        # The shelf only where it gives more whole blocks than memory does (reading it costs a file read).
        prompt_len = len(np.asarray(tokens))
        entry, shelved, shelved_length = None, whole_blocks(length, prompt_len), 0
        for candidate in self.shelf.entries():
            n = common_prefix(candidate.tokens, tokens)
            if whole_blocks(n, prompt_len) > shelved:
                entry, shelved, shelved_length = candidate, whole_blocks(n, prompt_len), n
        data = self.shelf.load(entry) if entry is not None else None
        if entry is None or data is None:
            return found, length
        snapshot = Snapshot(entry.tokens, data)
        self.stats.unshelved += 1
        self._remember(snapshot)
        return snapshot, shelved_length

    def used(self, snapshot: Snapshot) -> None:
        """Mark `snapshot` as just restored (most recently used)."""
        key = self._key(snapshot.tokens)
        if key in self._items:
            self._items.move_to_end(key)
            snapshot.hits += 1
            self.stats.restored += 1

    def add(self, snapshot: Snapshot) -> bool:
        """Keep `snapshot` (evicting older ones to make room), and shelve it; False when it is larger than
        the capacity."""
        kept = self._remember(snapshot)
        self.stats.saved += kept
        if kept and self.shelf is not None and not self.shelf.holds(snapshot.tokens):
            self.stats.shelved += self.shelf.put(snapshot.tokens, snapshot.data)
        return kept

    def _remember(self, snapshot: Snapshot) -> bool:
        if snapshot.nbytes > self.capacity_bytes:
            self.stats.too_big += 1
            return False
        key = self._key(snapshot.tokens)
        if key in self._items:  # the same prompt again: the newer copy replaces it
            self._bytes -= self._items.pop(key).nbytes
        for old_key, old in list(self._items.items()):
            if len(old.tokens) < len(snapshot.tokens) and common_prefix(old.tokens, snapshot.tokens) == len(old.tokens):
                self._drop(old_key)  # a prefix of the new one: every prompt it serves, the new one serves
        self._items[key] = snapshot
        self._bytes += snapshot.nbytes
        while self._bytes > self.capacity_bytes:
            self._drop(next(iter(self._items)))
        self._sync_stats()
        return True

    def _drop(self, key: bytes) -> None:
        self._bytes -= self._items.pop(key).nbytes
        self.stats.evicted += 1
        self._sync_stats()

    def _sync_stats(self) -> None:
        self.stats.snapshots, self.stats.bytes = len(self._items), self._bytes
