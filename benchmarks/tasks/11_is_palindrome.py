"""Code: the code specialist writes `is_palindrome`, runs its tests in the sandbox and passes at least one."""

from _checks import code_defines

PROMPT = "Write a Python function is_palindrome(s) that ignores case and spaces, with tests."
KIND = "code"
check = code_defines(r"def is_palindrome\b", "is_palindrome")
