"""General: POST and 201."""

from _checks import Mentions

PROMPT = 'Which HTTP method should a REST API use to create a new resource, and which status code says it was created?'
KIND = "general"
check = Mentions(r"\bPOST\b", r"\b201\b")
