"""General: 443 and 80."""

from _checks import Mentions

PROMPT = 'Which TCP port does HTTPS use by default, and which one does plain HTTP use?'
KIND = "general"
check = Mentions(r"\b443\b", r"\b80\b")
