"""Code: the code specialist writes `is_prime`, runs its tests in the sandbox and passes at least one."""

from _checks import code_defines

PROMPT = "Write a Python function is_prime(n) with tests."
KIND = "code"
check = code_defines(r"def is_prime\b", "is_prime")
