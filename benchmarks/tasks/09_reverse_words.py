"""Code: the code specialist writes `reverse_words`, runs its tests in the sandbox and passes at least one."""

from _checks import code_defines

PROMPT = "Write a Python function reverse_words(s) that reverses the order of the words in a sentence, with tests."
KIND = "code"
check = code_defines(r"def reverse_words\b", "reverse_words")
