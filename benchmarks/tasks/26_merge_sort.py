"""General: O(n log n)."""

from _checks import Mentions

PROMPT = 'What is the average time complexity of merge sort? Answer in one sentence.'
KIND = "general"
check = Mentions(r"n\s*\*?\s*log\s*\(?\s*n|n\s?log\s?n|linearithmic")
