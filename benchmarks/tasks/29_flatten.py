"""Code (python): flatten(nested), one level. Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a Python function flatten(nested) that flattens a list of lists by one level into a single list, with tests.'
KIND = "code"
TESTS = r"""
from solution import flatten


def test_lists_of_lists():
    assert flatten([[1, 2], [3], [], [4, 5]]) == [1, 2, 3, 4, 5]


def test_empty():
    assert flatten([]) == []


def test_only_one_level():
    assert flatten([[1, [2, 3]], [4]]) == [1, [2, 3], 4]
"""
REFERENCE = r"""
def flatten(nested):
    return [x for inner in nested for x in inner]
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('python', TESTS, r"def flatten\b")
