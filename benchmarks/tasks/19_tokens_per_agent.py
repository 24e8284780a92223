"""Data: the data specialist answers with DuckDB SQL over this run's execution log."""

from _checks import data_rows

PROMPT = "Which agent used the most tokens (input plus output) in the execution log?"
KIND = "data"
check = data_rows()
