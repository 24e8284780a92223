"""The prompt-prefix store's bookkeeping (no model): longest-prefix lookup, the memory bound, what it keeps.

The real model's side (same answers with and without reuse, tokens reused, the setting) is in
test_local_prompt_reuse.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from workbench.providers.prompt_cache import BLOCK, MIN_TOKENS, PrefixStore, Snapshot, common_prefix, whole_blocks

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
