"""General: saves uncommitted changes aside."""

from _checks import Mentions

PROMPT = 'What does `git stash` do? Answer in two sentences.'
KIND = "general"
check = Mentions(r"\b(sav\w*|stor\w*|shelv\w*|set aside|put aside|temporar\w*)\b", r"\b(uncommitted|changes|working (directory|tree)|modifications)\b")
