"""General: 212 degrees, and the formula."""

from _checks import Mentions

PROMPT = 'Convert 100 degrees Celsius to Fahrenheit and show the formula you used.'
KIND = "general"
check = Mentions(r"\b212\b", r"9\s*/\s*5|1\.8")
