"""Code (python): word_count(text) as a dict of lowercase words. Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a Python function word_count(text) that returns a dict mapping each word, lowercased, to how many times it appears; words are separated by whitespace. Include tests.'
KIND = "code"
TESTS = r"""
from solution import word_count


def test_counts():
    assert word_count("the cat and the hat") == {"the": 2, "cat": 1, "and": 1, "hat": 1}


def test_lowercased():
    assert word_count("Go go GO") == {"go": 3}


def test_empty():
    assert word_count("") == {}
    assert word_count("   ") == {}
"""
REFERENCE = r"""
def word_count(text):
    counts = {}
    for word in text.lower().split():
        counts[word] = counts.get(word, 0) + 1
    return counts
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('python', TESTS, r"def word_count\b")
