"""Data: the data specialist answers with DuckDB SQL over this run's execution log."""

from _checks import data_rows

PROMPT = "How many LLM calls per model are in the execution log?"
KIND = "data"
check = data_rows()
