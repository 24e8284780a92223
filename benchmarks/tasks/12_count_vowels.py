"""Code: the code specialist writes `count_vowels`, runs its tests in the sandbox and passes at least one."""

from _checks import code_defines

PROMPT = "Write a Python function count_vowels(s) that returns how many vowels a string has, with tests."
KIND = "code"
check = code_defines(r"def count_vowels\b", "count_vowels")
