"""Analysis of the execution log: anomaly detection, prediction, failure clusters, alert rules.

Everything here reads what the store recorded (history from the DuckDB/Parquet analytics snapshot,
live state from Postgres) and writes its own results back to the store; nothing is made up.
"""
