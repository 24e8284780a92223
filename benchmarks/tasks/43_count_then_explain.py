"""Multi: a count from the log (checked by the benchmark's own SQL) and a sentence about what it counts."""

from _checks import AllOf, DataAnswer, Mentions

PROMPT = ("How many LLM calls (events of kind llm_call) are in the execution log? Then explain in one sentence "
          "what an LLM call is.")
KIND = "multi"
check = AllOf(DataAnswer("SELECT count(*) FROM events WHERE kind = 'llm_call'", "value"),
              Mentions(r"\b(model|language model|LLM)\b"))
