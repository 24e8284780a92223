"""General: says rows of tables are combined on a matching column."""

from _checks import Mentions

PROMPT = 'Explain what a SQL JOIN does in two sentences.'
KIND = "general"
check = Mentions(r"\b(rows?|tables?)\b", r"\b(combin\w*|match\w*|related|common|keys?|columns?|condition)\b")
