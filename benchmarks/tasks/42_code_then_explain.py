"""Multi: Python code (held-out tests) and a one-sentence explanation that names the formula."""

from _checks import AllOf, HeldOutTests, Mentions

PROMPT = ("Write a Python function celsius_to_fahrenheit(c) that converts a temperature from Celsius to Fahrenheit, "
          "then explain in one sentence the formula it uses.")
KIND = "multi"
TESTS = r"""
import pytest

from solution import celsius_to_fahrenheit


def test_fixed_points():
    assert celsius_to_fahrenheit(0) == pytest.approx(32)
    assert celsius_to_fahrenheit(100) == pytest.approx(212)
    assert celsius_to_fahrenheit(-40) == pytest.approx(-40)


def test_body_temperature():
    assert celsius_to_fahrenheit(37) == pytest.approx(98.6)
"""
REFERENCE = r"""
def celsius_to_fahrenheit(c):
    return c * 9 / 5 + 32
"""
check = AllOf(HeldOutTests("python", TESTS, r"def celsius_to_fahrenheit\b"), Mentions(r"9\s*/\s*5|1\.8"))
