"""Data: the data specialist answers with DuckDB SQL over this run's execution log."""

from _checks import data_rows

PROMPT = "What is the average duration in milliseconds of the LLM calls per agent in the execution log?"
KIND = "data"
check = data_rows()
