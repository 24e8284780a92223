"""General: names what tests catch or enable."""

from _checks import mentions

PROMPT = "Summarize in two sentences why unit tests are useful."
KIND = "general"
check = mentions(r"\b(bugs?|regressions?|confidence|errors?|refactor\w*|defects?)\b")
