"""Data: the number of sandbox runs. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'How many sandbox runs (events of kind sandbox_run) are in the execution log?'
KIND = "data"
SQL = "SELECT count(*) FROM events WHERE kind = 'sandbox_run'"
check = DataAnswer(SQL, 'value')
