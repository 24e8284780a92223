"""Code (python): count_vowels(s), either case. Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a Python function count_vowels(s) that returns how many vowels (a, e, i, o, u, in either case) a string has, with tests.'
KIND = "code"
TESTS = r"""
from solution import count_vowels


def test_mixed_case():
    assert count_vowels("Hello World") == 3
    assert count_vowels("AEIOU aeiou") == 10


def test_no_vowels():
    assert count_vowels("rhythm") == 0
    assert count_vowels("") == 0
"""
REFERENCE = r"""
def count_vowels(s):
    return sum(1 for c in s.lower() if c in "aeiou")
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('python', TESTS, r"def count_vowels\b")
