"""Data: tasks per status. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'How many tasks are there per status in the execution log?'
KIND = "data"
SQL = 'SELECT status, count(*) FROM tasks GROUP BY status'
check = DataAnswer(SQL, 'per')
