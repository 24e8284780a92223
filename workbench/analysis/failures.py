"""Failed tasks grouped by error signature: the error text with its variable parts masked.

    clusters(failed_tasks())   # signature, count, first/last seen, example task ids and messages

`ProviderError: test:fail always fails (HTTP 503)` and the same error for another model differ only in
names and numbers; masking ids, numbers, paths and quoted values makes them one signature. The mask is
deterministic and readable (the page shows it), which a learnt clustering of a few dozen messages is not.
"""

from __future__ import annotations

import re

import pandas as pd

_MASKS = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE), "<id>"),
    (re.compile(r"\b[0-9a-f]{12,}\b", re.IGNORECASE), "<hex>"),
    (re.compile(r"(?:/[\w.\-]+){2,}"), "<path>"),
    (re.compile(r"https?://\S+"), "<url>"),
    (re.compile(r"'[^']*'|\"[^\"]*\""), "<str>"),
    (re.compile(r"\b\d+(?:\.\d+)?(?:e[-+]?\d+)?\b", re.IGNORECASE), "<n>"),
    (re.compile(r"\s+"), " "),
]
MAX_SIGNATURE = 160

_FAILED = """
SELECT t.id::VARCHAR AS task_id, t.title, t.model, t.error, t.finished_at
FROM tasks t WHERE t.status = 'failed' ORDER BY t.finished_at DESC NULLS LAST LIMIT 5000
"""


def signature(error: str | None) -> str:
    text = (error or "(no error text)").strip().splitlines()[0] if (error or "").strip() else "(no error text)"
    for pattern, repl in _MASKS:
        text = pattern.sub(repl, text)
    return text.strip()[:MAX_SIGNATURE]


def failed_tasks(home=None) -> pd.DataFrame:
    from workbench.store import analytics

    return analytics.query(_FAILED, home=home)


def clusters(failed: pd.DataFrame, examples: int = 3) -> pd.DataFrame:
    """One row per signature, most frequent first."""
    columns = ["signature", "count", "first_seen", "last_seen", "example_task_ids", "example_error"]
    if failed.empty:
        return pd.DataFrame(columns=columns)
    df = failed.assign(signature=[signature(e) for e in failed["error"]])
    rows = []
    for sig, group in df.groupby("signature", sort=False):
        group = group.sort_values("finished_at", ascending=False)
        rows.append({"signature": sig, "count": len(group), "first_seen": group["finished_at"].min(),
                     "last_seen": group["finished_at"].max(),
                     "example_task_ids": list(group["task_id"].head(examples)),
                     "example_error": str(group["error"].iloc[0] or "")[:500]})
    return pd.DataFrame(rows, columns=columns).sort_values("count", ascending=False, ignore_index=True)
