"""Code (python): chunk(items, size) with a ValueError. Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a Python function chunk(items, size) that splits a list into consecutive lists of length size (the last one may be shorter) and raises ValueError when size is less than 1. Include tests.'
KIND = "code"
TESTS = r"""
import pytest

from solution import chunk


def test_even_and_uneven():
    assert chunk([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]
    assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]


def test_empty_list():
    assert chunk([], 3) == []


def test_size_below_one_raises():
    with pytest.raises(ValueError):
        chunk([1, 2], 0)
    with pytest.raises(ValueError):
        chunk([1, 2], -1)
"""
REFERENCE = r"""
def chunk(items, size):
    if size < 1:
        raise ValueError("size must be at least 1")
    return [items[i:i + size] for i in range(0, len(items), size)]
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('python', TESTS, r"def chunk\b")
