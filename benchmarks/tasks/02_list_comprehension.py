"""General: shows a `for ... in` example."""

from _checks import mentions

PROMPT = "What is a Python list comprehension? Give one short example."
KIND = "general"
check = mentions(r"\bfor\b.+\bin\b")
