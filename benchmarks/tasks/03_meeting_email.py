"""General: greets, and names both days."""

from _checks import Mentions

PROMPT = 'Write a short, polite email to a colleague asking to move our Friday meeting to Monday.'
KIND = "general"
check = Mentions(r"\b(dear|hi|hello|regards|thanks?|thank you|best|sincerely|cheers)\b", r"\bFriday\b", r"\bMonday\b")
