"""Multi: the agent with the most LLM calls (the benchmark's own SQL) and one way to reduce them."""

from _checks import AllOf, DataAnswer, Mentions

PROMPT = ("Which agent made the most LLM calls in the execution log? Then suggest one way to reduce that "
          "agent's calls.")
KIND = "multi"
check = AllOf(DataAnswer("SELECT agent, count(*) AS v FROM events WHERE kind = 'llm_call' GROUP BY agent "
                         "ORDER BY v DESC", "top"),
              Mentions(r"\b(cach\w*|fewer|batch\w*|reduc\w*|combin\w*|reus\w*|merg\w*|skip\w*)\b"))
