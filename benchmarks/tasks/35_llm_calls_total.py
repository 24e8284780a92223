"""Data: the number of LLM calls. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'How many LLM calls (events of kind llm_call) are in the execution log in total?'
KIND = "data"
SQL = "SELECT count(*) FROM events WHERE kind = 'llm_call'"
check = DataAnswer(SQL, 'value')
