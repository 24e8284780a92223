"""General: Canberra."""

from _checks import Mentions

PROMPT = 'What is the capital city of Australia? Answer in one sentence.'
KIND = "general"
check = Mentions(r"\bCanberra\b")
