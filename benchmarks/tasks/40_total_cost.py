"""Data: the total cost of LLM calls. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'What is the total cost in USD of all LLM calls in the execution log?'
KIND = "data"
SQL = "SELECT sum(cost_usd) FROM events WHERE kind = 'llm_call'"
check = DataAnswer(SQL, 'value')
