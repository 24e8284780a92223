"""Experiments as pandas DataFrames, for notebooks:

    import workbench
    workbench.experiments()                    # one row per experiment: dataset, model, mode, pass rate, cost
    workbench.experiment_results("greedy-arith-1")   # one row per case: passed, score, tokens, task_id
"""

from __future__ import annotations

from workbench.experiment import records


def _store():
    from workbench.store import open_store

    return open_store()


def experiments(store=None):
    import pandas as pd

    rows = records.summaries(store or _store())
    columns = ["id", "name", "dataset", "dataset_version", "config_name", "model", "mode", "status", "cases", "done",
               "passed", "pass_rate", "errors", "cost_usd", "tokens", "median_ms", "created_at", "finished_at"]
    frame = pd.DataFrame(rows, columns=columns)
    for col in ("created_at", "finished_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def experiment_results(ref: str, store=None):
    import pandas as pd

    store = store or _store()
    return pd.DataFrame(records.results(store, records.get(store, ref)["id"]))
