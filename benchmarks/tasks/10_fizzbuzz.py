"""Code: the code specialist writes `fizzbuzz`, runs its tests in the sandbox and passes at least one."""

from _checks import code_defines

PROMPT = "Write a Python function fizzbuzz(n) that returns the list of strings for 1..n, with tests."
KIND = "code"
check = code_defines(r"def fizzbuzz\b", "fizzbuzz")
