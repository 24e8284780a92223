"""Code: the code specialist writes `merge_sorted`, runs its tests in the sandbox and passes at least one."""

from _checks import code_defines

PROMPT = "Write a Python function merge_sorted(a, b) that merges two sorted lists into one sorted list, with tests."
KIND = "code"
check = code_defines(r"def merge_sorted\b", "merge_sorted")
