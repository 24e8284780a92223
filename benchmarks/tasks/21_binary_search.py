"""General: O(log n), and a sorted input."""

from _checks import Mentions

PROMPT = 'What is the time complexity of binary search, and what must be true of its input? Answer in two sentences.'
KIND = "general"
check = Mentions(r"O\(\s*log\s*\(?\s*n\s*\)?\s*\)|logarithmic", r"\bsorted\b")
