"""General: says what threads share, and that processes are separate."""

from _checks import Mentions

PROMPT = 'Explain the difference between a process and a thread in two sentences.'
KIND = "general"
check = Mentions(r"memory|address space", r"\bshar(e|es|ed|ing)\b|\bown\b|separate|independent|isolat\w*")
