"""Code (python): is_prime(n). Held-out tests below, never shown to the model."""

from _checks import HeldOutTests

PROMPT = 'Write a Python function is_prime(n) with tests.'
KIND = "code"
TESTS = r"""
from solution import is_prime


def test_small_primes():
    assert [n for n in range(20) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19]


def test_zero_one_and_negatives_are_not_prime():
    assert not is_prime(0)
    assert not is_prime(1)
    assert not is_prime(-7)


def test_larger_numbers():
    assert is_prime(97)
    assert is_prime(7919)
    assert not is_prime(100)
    assert not is_prime(7917)
"""
REFERENCE = r"""
def is_prime(n):
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True
"""  # a solution that passes TESTS (tests/test_benchmark_sets.py checks it)
check = HeldOutTests('python', TESTS, r"def is_prime\b")
