"""Data: the model with the highest average cost per call. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'Which model has the highest average cost per LLM call in the execution log?'
KIND = "data"
SQL = "SELECT model, avg(cost_usd) AS v FROM events WHERE kind = 'llm_call' AND model IS NOT NULL GROUP BY model ORDER BY v DESC NULLS LAST"
check = DataAnswer(SQL, 'top')
