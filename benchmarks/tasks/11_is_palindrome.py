"""Code (python): is_palindrome(s), ignoring case and spaces. Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a Python function is_palindrome(s) that ignores case and spaces, with tests.'
KIND = "code"
TESTS = r"""
from solution import is_palindrome


def test_case_and_spaces_ignored():
    assert is_palindrome("Race car")
    assert is_palindrome("Never odd or even")


def test_not_a_palindrome():
    assert not is_palindrome("hello")
    assert not is_palindrome("ab")


def test_single_letter():
    assert is_palindrome("a")
"""
REFERENCE = r"""
def is_palindrome(s):
    t = s.replace(" ", "").lower()
    return t == t[::-1]
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('python', TESTS, r"def is_palindrome\b")
