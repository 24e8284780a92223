"""General: says what threads share (memory / address space)."""

from _checks import mentions

PROMPT = "Explain the difference between a process and a thread in two sentences."
KIND = "general"
check = mentions(r"memory|address space|\bshar(e|es|ed|ing)\b")
