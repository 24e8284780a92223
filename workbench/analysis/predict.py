"""Predict a task's duration and cost before it runs, from what the submit form knows.

    p = fit()                       # from the analytics snapshot's completed tasks
    p.predict(prompt="...", model="local:qwen2.5-coder-1.5b")   # {"duration_s": ..., "cost_usd": ...}
    p.report                        # held-out error: MAE, median relative error, and a naive baseline

Features known at submit time: the prompt's size and shape (characters, words, lines, whether it asks for
code), the model, approve-plan and whether a budget is set. Targets are learnt on a log scale (durations
and costs are long-tailed). The error is measured on the newest HOLDOUT share of history, which the model
never saw, next to the error of always answering the training median: a prediction is only worth
showing when it beats that baseline, and the page says whether it does.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from workbench.errors import WorkbenchError

MIN_TASKS = 8
HOLDOUT = 0.25
TARGETS = ("duration_s", "cost_usd")
NUMERIC = ["prompt_chars", "prompt_words", "prompt_lines", "asks_for_code", "approve_plan", "has_budget"]
_CODE = re.compile(r"\b(code|function|def|class|implement|script|program|python|typescript|java|bug|test)\b", re.IGNORECASE)

_HISTORY = """
WITH ev AS (
    SELECT task_id, coalesce(sum(cost_usd), 0) AS cost_usd, mode(model) FILTER (WHERE kind = 'llm_call') AS used_model
    FROM events WHERE task_id IS NOT NULL GROUP BY task_id)
SELECT t.id::VARCHAR AS task_id, t.title, t.prompt, coalesce(t.model, ev.used_model, '(default)') AS model,
       t.budget_usd, coalesce(try_cast(json_extract(t.result, '$.approve_plan') AS BOOLEAN), false) AS approve_plan,
       t.created_at, date_diff('millisecond', t.started_at, t.finished_at) / 1000.0 AS duration_s,
       coalesce(ev.cost_usd, 0) AS cost_usd
FROM tasks t LEFT JOIN ev ON ev.task_id = t.id
WHERE t.status = 'completed' AND t.started_at IS NOT NULL AND t.finished_at IS NOT NULL
ORDER BY t.created_at
"""


class NotEnoughHistory(WorkbenchError):
    pass


def prompt_features(prompt: str, model: str, approve_plan: bool = False, budget_usd: float | None = None) -> dict:
    prompt = prompt or ""
    return {"prompt_chars": len(prompt), "prompt_words": len(prompt.split()), "prompt_lines": prompt.count("\n") + 1,
            "asks_for_code": int(bool(_CODE.search(prompt))), "approve_plan": int(bool(approve_plan)),
            "has_budget": int(budget_usd is not None), "model": model or "(default)"}


def history(home=None) -> pd.DataFrame:
    from workbench.store import analytics

    return analytics.query(_HISTORY, home=home)


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    rows = [prompt_features(p, m, a, None if pd.isna(b) else b)
            for p, m, a, b in zip(df["prompt"], df["model"], df["approve_plan"], df["budget_usd"])]
    return pd.DataFrame(rows, columns=NUMERIC + ["model"])


def _pipeline():
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer([("model", OneHotEncoder(handle_unknown="ignore"), ["model"])], remainder="passthrough")
    return Pipeline([("encode", encode),
                     ("forest", RandomForestRegressor(n_estimators=200, min_samples_leaf=2, random_state=0, n_jobs=1))])


@dataclass
class Predictor:
    models: dict[str, Any]
    report: dict[str, dict[str, float]]
    trained_on: int
    trained_at: float = field(default_factory=time.time)
    holdout: pd.DataFrame = field(default_factory=pd.DataFrame)  # predicted vs actual, for the page

    def predict(self, prompt: str, model: str, approve_plan: bool = False, budget_usd: float | None = None) -> dict:
        x = pd.DataFrame([prompt_features(prompt, model, approve_plan, budget_usd)], columns=NUMERIC + ["model"])
        return {t: float(np.expm1(self.models[t].predict(x)[0])) / _SCALE[t] for t in TARGETS}


_SCALE = {"duration_s": 1.0, "cost_usd": 1e6}  # cost learnt in micro-dollars so log1p has room to work


def fit(df: pd.DataFrame | None = None) -> Predictor:
    """Train on completed tasks (oldest first); measure on the newest HOLDOUT share; refit on everything."""
    df = history() if df is None else df
    df = df.dropna(subset=["duration_s"]).reset_index(drop=True)
    if len(df) < MIN_TASKS:
        raise NotEnoughHistory(f"Prediction needs at least {MIN_TASKS} completed tasks in the analytics snapshot; "
                               f"it has {len(df)}. Run a few tasks (or `workbench demo`), then come back.")
    x = _frame(df)
    n_test = max(2, int(round(len(df) * HOLDOUT)))
    train, test = slice(0, len(df) - n_test), slice(len(df) - n_test, len(df))
    report: dict[str, dict[str, float]] = {}
    holdout = pd.DataFrame({"task_id": df["task_id"].iloc[test].values, "title": df["title"].iloc[test].values})
    models = {}
    for target in TARGETS:
        y = np.log1p(df[target].to_numpy(float) * _SCALE[target])
        probe = _pipeline().fit(x.iloc[train], y[train])
        predicted = np.expm1(probe.predict(x.iloc[test])) / _SCALE[target]
        actual = df[target].to_numpy(float)[test]
        baseline = float(np.median(df[target].to_numpy(float)[train]))
        denom = np.where(np.abs(actual) > 0, np.abs(actual), np.nan)
        report[target] = {
            "mae": float(np.mean(np.abs(predicted - actual))),
            "median_relative_error": float(np.nanmedian(np.abs(predicted - actual) / denom)) if np.isfinite(denom).any() else float("nan"),
            "baseline_mae": float(np.mean(np.abs(baseline - actual))),
            "test_rows": n_test, "train_rows": int(len(df) - n_test),
        }
        holdout[f"{target}_actual"] = actual
        holdout[f"{target}_predicted"] = predicted
        models[target] = _pipeline().fit(x, y)  # the served model uses all history
    return Predictor(models, report, len(df), holdout=holdout)
