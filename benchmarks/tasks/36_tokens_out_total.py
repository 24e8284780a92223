"""Data: total output tokens of LLM calls. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'What is the total number of output tokens (tokens_out) over all LLM calls in the execution log?'
KIND = "data"
SQL = "SELECT sum(tokens_out) FROM events WHERE kind = 'llm_call'"
check = DataAnswer(SQL, 'value')
