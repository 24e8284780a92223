"""Code (python): fizzbuzz(n) as a list of strings. Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a Python function fizzbuzz(n) that returns the list of strings for 1..n, with tests.'
KIND = "code"
TESTS = r"""
from solution import fizzbuzz


def test_fifteen():
    assert fizzbuzz(15) == ["1", "2", "Fizz", "4", "Buzz", "Fizz", "7", "8", "Fizz", "Buzz", "11", "Fizz", "13",
                            "14", "FizzBuzz"]


def test_one():
    assert fizzbuzz(1) == ["1"]


def test_zero_is_empty():
    assert fizzbuzz(0) == []
"""
REFERENCE = r"""
def fizzbuzz(n):
    return ["FizzBuzz" if i % 15 == 0 else "Fizz" if i % 3 == 0 else "Buzz" if i % 5 == 0 else str(i)
            for i in range(1, n + 1)]
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('python', TESTS, r"def fizzbuzz\b")
