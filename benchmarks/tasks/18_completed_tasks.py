"""Data: tasks with status completed. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'How many tasks in the execution log have status completed?'
KIND = "data"
SQL = "SELECT count(*) FROM tasks WHERE status = 'completed'"
check = DataAnswer(SQL, 'value')
