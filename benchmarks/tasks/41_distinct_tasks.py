"""Data: tasks with at least one event. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'How many distinct task ids appear in the events of the execution log?'
KIND = "data"
SQL = 'SELECT count(DISTINCT task_id) FROM events WHERE task_id IS NOT NULL'
check = DataAnswer(SQL, 'value')
