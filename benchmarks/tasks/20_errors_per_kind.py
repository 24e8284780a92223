"""Data: the data specialist answers with DuckDB SQL over this run's execution log."""

from _checks import data_rows

PROMPT = "How many events in the execution log have an error, per event kind?"
KIND = "data"
check = data_rows()
