"""General: has a greeting or sign-off."""

from _checks import mentions

PROMPT = "Write a short, polite email to a colleague asking to move our Friday meeting to Monday."
KIND = "general"
check = mentions(r"\b(dear|hi|hello|regards|thanks?|thank you|best|sincerely|cheers)\b")
