"""Evaluation data and its scoring: datasets of cases (named, versioned, in Postgres), the loaders that
read them (HumanEval, the project's task sets, JSONL / CSV / Parquet files), the checkers that score an
answer, an experiment's configuration, how one case is run in each mode, and the statistics that compare
two runs. The experiment driver that runs cases as tasks on Dask is `workbench.experiments`, a layer up.
"""
