"""Data: events with an error, per kind. The expected answer is this file's SQL over the same snapshot."""

from _checks import DataAnswer

PROMPT = 'How many events in the execution log have an error, per event kind?'
KIND = "data"
SQL = 'SELECT kind, count(*) FROM events WHERE error IS NOT NULL GROUP BY kind'
check = DataAnswer(SQL, 'per')
