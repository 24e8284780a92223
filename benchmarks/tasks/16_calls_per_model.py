"""Data: LLM calls per model. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'How many LLM calls per model are in the execution log?'
KIND = "data"
SQL = "SELECT model, count(*) FROM events WHERE kind = 'llm_call' GROUP BY model"
check = DataAnswer(SQL, 'per')
