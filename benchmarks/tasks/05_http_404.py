"""General: says the requested resource is not found."""

from _checks import Mentions

PROMPT = 'What does HTTP status code 404 mean? Answer in one sentence.'
KIND = "general"
check = Mentions(r"not (be )?found|does ?n[o']t exist|not exist|could not (be )?(found|locate)|cannot (be )?(found|locate)", r"\b(resource|page|url|server|requested)\b")
