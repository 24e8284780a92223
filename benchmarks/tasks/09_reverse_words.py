"""Code (python): reverse_words(s). Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a Python function reverse_words(s) that reverses the order of the words in a sentence, with tests.'
KIND = "code"
TESTS = r"""
from solution import reverse_words


def test_two_words():
    assert reverse_words("hello world") == "world hello"


def test_several_words():
    assert reverse_words("one two three four") == "four three two one"


def test_one_word():
    assert reverse_words("alone") == "alone"
"""
REFERENCE = r"""
def reverse_words(s):
    return " ".join(reversed(s.split()))
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('python', TESTS, r"def reverse_words\b")
