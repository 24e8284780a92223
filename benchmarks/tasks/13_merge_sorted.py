"""Code (python): merge_sorted(a, b). Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a Python function merge_sorted(a, b) that merges two sorted lists into one sorted list, with tests.'
KIND = "code"
TESTS = r"""
from solution import merge_sorted


def test_interleaved():
    assert merge_sorted([1, 3, 5], [2, 4, 6]) == [1, 2, 3, 4, 5, 6]


def test_empty_sides():
    assert merge_sorted([], [1, 2]) == [1, 2]
    assert merge_sorted([1, 2], []) == [1, 2]
    assert merge_sorted([], []) == []


def test_duplicates_kept():
    assert merge_sorted([1, 2, 2], [2, 3]) == [1, 2, 2, 2, 3]
"""
REFERENCE = r"""
def merge_sorted(a, b):
    return sorted(a + b)
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('python', TESTS, r"def merge_sorted\b")
