"""General: talks about rows/tables being combined."""

from _checks import mentions

PROMPT = "Explain what a SQL JOIN does in two sentences."
KIND = "general"
check = mentions(r"\b(rows?|tables?|combin\w*|match\w*|keys?)\b")
