"""General: gives three list items of naming advice."""

from _checks import Mentions

PROMPT = 'Give three tips for naming variables well.'
KIND = "general"
check = Mentions(r"\b(descriptive|meaningful|clear|consistent\w*|abbreviat\w*|avoid|readab\w*)\b", r"(?ms)^\s*(?:\**\d[.)]|[-*\u2022]\s).*^\s*(?:\**\d[.)]|[-*\u2022]\s).*^\s*(?:\**\d[.)]|[-*\u2022]\s)")
