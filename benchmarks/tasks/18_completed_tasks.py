"""Data: the data specialist answers with DuckDB SQL over this run's execution log."""

from _checks import data_rows

PROMPT = "How many tasks in the execution log have status completed?"
KIND = "data"
check = data_rows()
