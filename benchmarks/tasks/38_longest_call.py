"""Data: the longest LLM call. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'What is the longest duration in milliseconds of any LLM call in the execution log?'
KIND = "data"
SQL = "SELECT max(duration_ms) FROM events WHERE kind = 'llm_call'"
check = DataAnswer(SQL, 'value')
