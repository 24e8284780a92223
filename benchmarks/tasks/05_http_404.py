"""General: says the resource is not found."""

from _checks import mentions

PROMPT = "What does HTTP status code 404 mean? Answer in one sentence."
KIND = "general"
check = mentions(r"not (be )?found|does ?n[o']t exist|not exist|missing|could not|cannot")
