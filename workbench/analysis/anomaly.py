"""Unusual executions: an IsolationForest over the execution log, its scores stored back in Postgres.

    result = train(store, "call")          # or "task"; reads the analytics snapshot, writes the scores
    flagged(store, "call")                 # the unusual rows, with the features that made them unusual
    should_retrain(store, "call")          # (True, why) after RETRAIN_NEW_ROWS new rows or RETRAIN_EVERY_S

Two levels: every model call (latency, tokens, cost, error, ms per token) and every finished task
(duration, rounds of model calls, agent steps, tokens, cost, errors, retries). Features are log-scaled
(they are long-tailed: one slow call should not squash all the others into one split).

Why a row is unusual is explained with robust z-scores against the training data: (value - median) /
(1.4826 * MAD); the features with |z| >= REASON_Z are listed, largest first, with the typical value.
Scores are stored in `anomaly_scores` (higher = more unusual) under one `anomaly_models` row per training.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from workbench.analysis import features as F
from workbench.errors import WorkbenchError

LEVELS = ("call", "task")
MIN_ROWS = {"call": 20, "task": 10}  # below this an "unusual" row means nothing
RETRAIN_NEW_ROWS = {"call": 500, "task": 50}  # automatic retrain once this many new rows arrived ...
RETRAIN_EVERY_S = 3600.0  # ... or this long after the last training, if anything new arrived at all
CONTAMINATION = 0.05  # share of rows flagged
REASON_Z = 3.0
KEEP_MODELS = 2  # older trainings (and their scores) per level are deleted


class NotEnoughData(WorkbenchError):
    pass


@dataclass
class TrainResult:
    model_id: str
    level: str
    rows: int
    flagged: int
    duration_ms: float
    trained_until_seq: int
    trigger: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _robust_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    median = np.median(x, axis=0)
    mad = np.median(np.abs(x - median), axis=0) * 1.4826
    # A constant-ish feature (MAD 0) falls back to the std, then to 1: any deviation still shows.
    std = x.std(axis=0)
    scale = np.where(mad > 0, mad, np.where(std > 0, std, 1.0))
    return median, scale


def explain(values: pd.DataFrame, names: list[str], median: np.ndarray, scale: np.ndarray,
            raw_median: np.ndarray) -> list[list[dict[str, Any]]]:
    """Per row: the features far from typical, as {feature, value, typical, z} sorted by |z|."""
    z = (np.log1p(np.clip(values[names].to_numpy(float), 0, None)) - median) / scale
    out = []
    for i in range(len(values)):
        reasons = [{"feature": names[j], "value": float(values[names[j]].iloc[i]), "typical": float(raw_median[j]),
                    "z": round(float(z[i, j]), 2)}
                   for j in np.argsort(-np.abs(z[i])) if abs(z[i, j]) >= REASON_Z]
        out.append(reasons[:3])
    return out


def describe(reasons: list[dict[str, Any]]) -> str:
    """'duration_ms 12,340 (typical 810); error 1 (typical 0)' — what the page shows."""
    if not reasons:
        return "unusual combination of features (no single one far from typical)"
    return "; ".join(f"{r['feature']} {r['value']:,.6g} (typical {r['typical']:,.6g})" for r in reasons)


def train(store, level: str = "call", *, trigger: str = "manual", contamination: float = CONTAMINATION,
          frame: pd.DataFrame | None = None) -> TrainResult:
    """Fit on the analytics snapshot (or `frame`), score every row, store model and scores."""
    from sklearn.ensemble import IsolationForest

    if level not in LEVELS:
        raise WorkbenchError(f"Unknown level {level!r}: use one of {', '.join(LEVELS)}.")
    started = time.perf_counter()
    df = F.rows(level) if frame is None else frame
    names = F.FEATURES[level]
    if len(df) < MIN_ROWS[level]:
        raise NotEnoughData(
            f"Anomaly detection per {level} needs at least {MIN_ROWS[level]} rows in the analytics snapshot; "
            f"it has {len(df)}. Run more tasks (or `workbench demo`), wait for the sync (2 s), then retrain.")
    df = df.reset_index(drop=True)
    x_raw = df[names].to_numpy(float)
    x = np.log1p(np.clip(x_raw, 0, None))
    forest = IsolationForest(n_estimators=100, max_samples=min(256, len(df)), contamination=contamination,
                             random_state=0, n_jobs=1)
    forest.fit(x)
    score = -forest.score_samples(x)  # higher = more unusual
    threshold = -float(forest.offset_)
    is_flagged = score > threshold
    median, scale = _robust_scale(x)
    raw_median = np.median(x_raw, axis=0)
    reasons: list[list[dict]] = [[] for _ in range(len(df))]
    idx = np.flatnonzero(is_flagged)
    for i, r in zip(idx, explain(df.iloc[idx], names, median, scale, raw_median)):
        reasons[i] = r
    model_id = str(uuid.uuid4())
    until = int(df["seq"].max()) if len(df) and df["seq"].notna().any() else 0
    tasks_seen = len(df) if level == "task" else 0
    duration_ms = (time.perf_counter() - started) * 1000
    info = {"names": names, "median": dict(zip(names, raw_median.tolist())), "log_median": median.tolist(),
            "log_scale": scale.tolist()}
    params = {"contamination": contamination, "n_estimators": 100, "threshold": threshold,
              "min_rows": MIN_ROWS[level], "retrain_new_rows": RETRAIN_NEW_ROWS[level],
              "retrain_every_s": RETRAIN_EVERY_S}
    _store(store, model_id, level, df, names, score, is_flagged, reasons, info, params, until, tasks_seen,
           duration_ms, trigger)
    return TrainResult(model_id, level, len(df), int(is_flagged.sum()), duration_ms, until, trigger)


def _store(store, model_id, level, df, names, score, is_flagged, reasons, info, params, until, tasks_seen,
           duration_ms, trigger) -> None:
    """One transaction: the model row, every score (COPY), then older trainings of the level removed."""
    feats = df[names].to_numpy(float)
    buf = io.StringIO()
    task_ids = ["\\N" if pd.isna(t) else str(t) for t in df["task_id"]]
    seqs = df["seq"].tolist()
    ts = pd.to_datetime(df["ts"], utc=True)
    for i, key in enumerate(df["row_key"].tolist()):
        row = [model_id, str(key), task_ids[i], "\\N" if pd.isna(seqs[i]) else str(int(seqs[i])),
               "\\N" if pd.isna(ts.iloc[i]) else ts.iloc[i].isoformat(), repr(float(score[i])),
               "t" if is_flagged[i] else "f",
               _copy_text(json.dumps(dict(zip(names, feats[i].tolist())))), _copy_text(json.dumps(reasons[i]))]
        buf.write("\t".join(row) + "\n")
    with store.connection() as conn, conn.transaction():
        conn.execute(
            "INSERT INTO anomaly_models (id, level, rows, flagged, features, params, trained_until_seq, tasks_seen,"
            " duration_ms, trigger) VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s)",
            (model_id, level, len(df), int(is_flagged.sum()), json.dumps(info), json.dumps(params), until,
             tasks_seen, duration_ms, trigger))
        with conn.cursor().copy("COPY anomaly_scores (model_id, row_key, task_id, seq, ts, score, flagged, features,"
                                " reasons) FROM STDIN") as copy:
            copy.write(buf.getvalue())
        conn.execute(
            "DELETE FROM anomaly_models WHERE level = %s AND id NOT IN (SELECT id FROM anomaly_models WHERE level = %s"
            " ORDER BY trained_at DESC, id LIMIT %s)", (level, level, KEEP_MODELS))


def _copy_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def latest(store, level: str) -> dict[str, Any] | None:
    from psycopg.rows import dict_row

    with store.connection() as conn:
        return conn.cursor(row_factory=dict_row).execute(
            "SELECT id::text AS id, level, trained_at, rows, flagged, features, params, trained_until_seq, tasks_seen,"
            " duration_ms, trigger FROM anomaly_models WHERE level = %s ORDER BY trained_at DESC LIMIT 1",
            (level,)).fetchone()


def flagged(store, level: str, limit: int = 200) -> pd.DataFrame:
    """Flagged rows of the newest training, most unusual first, with a human-readable reason."""
    model = latest(store, level)
    columns = ["score", "row_key", "task_id", "seq", "ts", "title", "features", "reasons", "why"]
    if model is None:
        return pd.DataFrame(columns=columns)
    with store.connection() as conn:
        cur = conn.execute(
            "SELECT s.score, s.row_key, s.task_id::text, s.seq, s.ts, t.title, s.features, s.reasons"
            " FROM anomaly_scores s LEFT JOIN tasks t ON t.id = s.task_id"
            " WHERE s.model_id = %s AND s.flagged ORDER BY s.score DESC LIMIT %s", (model["id"], limit))
        df = pd.DataFrame(cur.fetchall(), columns=columns[:-1])
    df["why"] = [describe(r) for r in df["reasons"]]
    return df


def scores(store, level: str) -> pd.DataFrame:
    """Every score of the newest training (for the distribution chart)."""
    model = latest(store, level)
    if model is None:
        return pd.DataFrame(columns=["score", "flagged"])
    with store.connection() as conn:
        cur = conn.execute("SELECT score, flagged FROM anomaly_scores WHERE model_id = %s", (model["id"],))
        return pd.DataFrame(cur.fetchall(), columns=["score", "flagged"])


def new_rows(store, level: str, model: dict[str, Any] | None) -> int:
    """Rows that arrived in Postgres since `model` was trained (all rows when there is none)."""
    with store.connection() as conn:
        if level == "call":
            after = model["trained_until_seq"] if model else 0
            return conn.execute("SELECT count(*) FROM events WHERE kind = 'llm_call' AND seq > %s",
                                (after,)).fetchone()[0]
        finished = conn.execute("SELECT count(*) FROM tasks WHERE status IN ('completed', 'failed', 'cancelled')"
                                " AND started_at IS NOT NULL").fetchone()[0]
        return max(0, finished - (model["tasks_seen"] if model else 0))


def should_retrain(store, level: str, now: float | None = None) -> tuple[bool, str]:
    """(retrain?, why): first training once MIN_ROWS exist, then after RETRAIN_NEW_ROWS or the timer."""
    model = latest(store, level)
    fresh = new_rows(store, level, model)
    if model is None:
        if fresh >= MIN_ROWS[level]:
            return True, f"first training: {fresh} rows available (minimum {MIN_ROWS[level]})"
        return False, f"waiting for {MIN_ROWS[level]} rows ({fresh} so far)"
    if fresh >= RETRAIN_NEW_ROWS[level]:
        return True, f"{fresh} new rows since the last training (threshold {RETRAIN_NEW_ROWS[level]})"
    age = (now or time.time()) - model["trained_at"].timestamp()
    if age >= RETRAIN_EVERY_S and fresh > 0:
        return True, f"timer: last training {age / 60:.0f} min ago and {fresh} new rows"
    return False, f"{fresh} new rows of {RETRAIN_NEW_ROWS[level]} needed; timer in {max(0, RETRAIN_EVERY_S - age) / 60:.0f} min"
