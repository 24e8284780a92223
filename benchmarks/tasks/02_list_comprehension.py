"""General: shows a `for ... in` example inside brackets."""

from _checks import Mentions

PROMPT = 'What is a Python list comprehension? Give one short example.'
KIND = "general"
check = Mentions(r"\bfor\b.+\bin\b", r"\[[^\]\n]*\bfor\b[^\]\n]*\]")
