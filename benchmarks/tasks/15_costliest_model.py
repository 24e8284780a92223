"""Data: the data specialist answers with DuckDB SQL over this run's execution log."""

from _checks import data_rows

PROMPT = "Which model has the highest average cost per call in the execution log?"
KIND = "data"
check = data_rows()
