import pytest
from lru import LRUCache


def test_example_eviction():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    assert c.get("a") == 1
    c.put("c", 3)
    assert c.get("b") is None
    assert c.get("a") == 1 and c.get("c") == 3
    assert len(c) == 2


def test_replace_refreshes():
    c = LRUCache(2)
    c.put("a", 1)
    c.put("b", 2)
    c.put("a", 10)
    c.put("c", 3)
    assert c.get("a") == 10
    assert c.get("b") is None


def test_replace_does_not_grow():
    c = LRUCache(1)
    c.put("a", 1)
    c.put("a", 2)
    assert len(c) == 1 and c.get("a") == 2


def test_miss_is_none():
    assert LRUCache(3).get("x") is None


@pytest.mark.parametrize("bad", [0, -2])
def test_bad_capacity(bad):
    with pytest.raises(ValueError):
        LRUCache(bad)
