"""Data: the agent with the most tokens in its LLM calls. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'Counting only llm_call events, which agent used the most tokens (tokens_in plus tokens_out) in the execution log?'
KIND = "data"
SQL = "SELECT agent, sum(coalesce(tokens_in, 0) + coalesce(tokens_out, 0)) AS v FROM events WHERE kind = 'llm_call' GROUP BY agent ORDER BY v DESC NULLS LAST"
check = DataAnswer(SQL, 'top')
