"""General: gives naming advice."""

from _checks import mentions

PROMPT = "Give three tips for naming variables well."
KIND = "general"
check = mentions(r"\b(descriptive|meaningful|clear|consistent\w*|abbreviat\w*|avoid|readab\w*)\b")
