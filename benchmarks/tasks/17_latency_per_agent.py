"""Data: mean LLM call duration per agent. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'What is the average duration in milliseconds of the LLM calls per agent in the execution log?'
KIND = "data"
SQL = "SELECT agent, avg(duration_ms) FROM events WHERE kind = 'llm_call' GROUP BY agent"
check = DataAnswer(SQL, 'per')
