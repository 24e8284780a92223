"""General: names what tests catch and what they make safe."""

from _checks import Mentions

PROMPT = 'Summarize in two sentences why unit tests are useful.'
KIND = "general"
check = Mentions(r"\b(bugs?|regressions?|errors?|defects?)\b", r"\b(confiden\w*|refactor\w*|chang\w*|maintain\w*|document\w*|early)\b")
