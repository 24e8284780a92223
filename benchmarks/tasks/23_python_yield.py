"""General: a generator that pauses and resumes."""

from _checks import Mentions

PROMPT = 'What does the Python keyword yield do? Answer in two sentences.'
KIND = "general"
check = Mentions(r"generator", r"\b(paus\w*|suspend\w*|resum\w*|lazy|lazily|one at a time|each|iterat\w*)\b")
