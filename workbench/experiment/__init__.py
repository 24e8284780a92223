"""Experiments: a dataset version run in one configuration, each case a normal traced task on Dask.

    records.py   the experiments and their result rows (create or resume, find, list)
    run.py       the driver: claim the unfinished cases, submit one task per case, follow them to the end
    compare.py   two experiments on the same dataset version, case by case
    frames.py    the same as pandas DataFrames for notebooks (`workbench.experiments()`)

The case body itself (answer, judge, record) is the task layer's `experiment_case`; the datasets, checkers,
configurations and statistics are `workbench.evals`.
"""
