"""The prompt-prefix store's bookkeeping (no model): longest-prefix lookup, the memory bound, what it keeps,
and the shelf that keeps snapshots on disk for the next host.

The real model's side (same answers with and without reuse, tokens reused, the setting) is in
test_local_prompt_reuse.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench.providers.prompt_cache import BLOCK, MIN_TOKENS, PrefixStore, Snapshot, common_prefix, whole_blocks
from workbench.providers.prompt_shelf import MAGIC, SnapshotShelf

SYSTEM = list(range(1000, 1300))  # 300 tokens every prompt of one call site starts with


def snap(tokens: list[int], nbytes: int = 1000) -> Snapshot:
    return Snapshot(np.array(tokens, dtype=np.intc), b"\0" * nbytes)


def size(tokens: list[int], nbytes: int = 1000) -> int:
    return snap(tokens, nbytes).nbytes


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4, 5]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix(np.array([7, 8], dtype=np.intc), [9]) == 0


def test_whole_blocks_never_reach_into_the_last_token_block():
    assert whole_blocks(BLOCK - 1, 1000) == 0
    assert whole_blocks(BLOCK * 2 + 5, 1000) == BLOCK * 2
    # The whole prompt shared: the block holding its last token is evaluated again (for its logits).
    assert whole_blocks(BLOCK * 3, BLOCK * 3) == BLOCK * 2
    assert whole_blocks(BLOCK * 3 + 1, BLOCK * 3 + 1) == BLOCK * 3
    assert whole_blocks(0, 0) == 0


def test_best_is_the_snapshot_sharing_the_longest_prefix():
    store = PrefixStore(1 << 20)
    director = SYSTEM + [1, 2, 3] * 30
    code = list(range(5000, 5200))
    store.add(snap(director))
    store.add(snap(code))
    found, shared = store.best(SYSTEM + [9] * 40)  # the same system prompt, another request
    assert found is not None and found.tokens.tolist() == director and shared == len(SYSTEM)
    found, shared = store.best(code[:150] + [1] * 50)
    assert found is not None and found.tokens.tolist() == code and shared == 150
    assert store.best([42] * 200) == (None, 0)


def test_least_recently_used_goes_first_and_the_bound_holds():
    a, b, c = ([k] * 200 for k in (1, 2, 3))
    store = PrefixStore(capacity_bytes=2 * size(a) + 10)
    store.add(snap(a))
    store.add(snap(b))
    found, _ = store.best(a)
    store.used(found)  # a restored: b is now the least recently used
    store.add(snap(c))
    assert a in store and c in store and b not in store
    assert store.nbytes <= store.capacity_bytes and store.stats.evicted == 1 and store.stats.restored == 1
    assert store.stats.bytes == store.nbytes and store.stats.snapshots == 2


def test_a_snapshot_covered_by_a_newer_one_is_dropped():
    """The code loop's fix round extends the previous round's prompt: the older snapshot serves nothing more."""
    store = PrefixStore(1 << 20)
    first = SYSTEM + [5] * 100
    store.add(snap(first))
    store.add(snap(SYSTEM + [6] * 100))  # shares only the system prompt: both kept
    store.add(snap(first + [7] * 50))
    assert len(store) == 2 and first not in store
    store.add(snap(first + [7] * 50))  # the same prompt again replaces its copy
    assert len(store) == 2 and store.nbytes == size(SYSTEM + [6] * 100) + size(first + [7] * 50)


def test_what_is_not_kept():
    store = PrefixStore(capacity_bytes=5000)
    assert not store.add(snap([1] * 200, nbytes=6000)) and len(store) == 0 and store.stats.too_big == 1
    assert not store.wants([1] * (MIN_TOKENS - 1))  # no whole block to offer
    assert store.wants([1] * MIN_TOKENS)
    store.add(snap([1] * MIN_TOKENS))
    assert not store.wants([1] * MIN_TOKENS)  # already there
    with pytest.raises(ValueError, match="do not create a PrefixStore"):
        PrefixStore(0)


# --- the shelf: snapshots on disk for the next host of the same model ------------------------------------


def test_a_store_on_the_same_shelf_finds_what_another_one_kept(tmp_path):
    shelf_dir = tmp_path / "shelf"
    first = PrefixStore(1 << 20, shelf=SnapshotShelf(shelf_dir, 1 << 20))
    first.add(snap(SYSTEM + [1, 2, 3], nbytes=5000))
    assert first.stats.shelved == 1 and len(list(shelf_dir.glob("*.kv"))) == 1

    second = PrefixStore(1 << 20, shelf=SnapshotShelf(shelf_dir, 1 << 20))  # a new host
    found, shared = second.best(SYSTEM + [7, 8])
    assert found is not None and shared == len(SYSTEM) and found.data == b"\0" * 5000
    assert second.stats.unshelved == 1 and len(second) == 1  # now in memory too: read from disk once
    again, _ = second.best(SYSTEM + [9])
    assert again is found and second.stats.unshelved == 1
    # Fewer than one whole block in common: not worth a file read.
    assert second.best(SYSTEM[: BLOCK - 1] + [5] * 300) == (found, BLOCK - 1)
    assert PrefixStore(1 << 20, shelf=SnapshotShelf(shelf_dir, 1 << 20)).best(list(range(BLOCK * 2))) == (None, 0)


def test_the_shelf_keeps_its_capacity_and_drops_what_a_longer_snapshot_covers(tmp_path):
    shelf = SnapshotShelf(tmp_path, 30_000)
    shelf.put(np.array(SYSTEM, dtype=np.intc), b"a" * 10_000)
    shelf.put(np.array(SYSTEM + [1, 2], dtype=np.intc), b"b" * 10_000)  # covers the first: it goes
    assert [len(e.tokens) for e in shelf.entries()] == [len(SYSTEM) + 2]
    for i in range(3):  # each about 11 kB: the least recently used go first
        shelf.put(np.array([i] * 200, dtype=np.intc), b"c" * 10_000)
    sizes = sum(p.stat().st_size for p in tmp_path.glob("*.kv"))
    assert sizes <= 30_000 and len(shelf.entries()) == 2
    assert not shelf.put(np.array([9] * 10, dtype=np.intc), b"x" * 40_000)  # larger than the shelf: never kept
    (tmp_path / "torn.kv").write_bytes(MAGIC + b"\xff\xff")  # cut off: ignored, never an error
    assert len(shelf.entries()) == 2
