"""The message bus between agents: every message is a `message` row in the event log.

    bus.send("request", sender="director", to="code", text="Write median()", subtask_id="s2")
    bus.send("result", sender="code", to="director", text="def median(...)", subtask_id="s2")
    bus.send("note", sender="data", to="*", text="the log has no failed calls yet")

Rows go through the batched writer like every other event; Postgres NOTIFY on insert pushes them to
the API's WebSocket (/api/v1/tasks/{id}/stream) and the dashboards as they happen, from whichever
process sent them (a Dask worker, the server, a notebook).
"""

from __future__ import annotations

from typing import Any

from workbench import telemetry

KINDS = ("request", "result", "note")
MAX_TEXT = 4000  # the event keeps the start; the full text lives in the subtask result


def send(kind: str, *, sender: str, to: str, text: str, **data: Any) -> dict[str, Any]:
    """Post one message in the current task's trace; returns the recorded event."""
    if kind not in KINDS:
        raise ValueError(f"Unknown message kind {kind!r}; use one of {', '.join(KINDS)}.")
    clipped = text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f" [... {len(text) - MAX_TEXT} more chars]"
    return telemetry.emit("message", agent=sender, payload={"type": kind, "from": sender, "to": to, "text": clipped,
                                                         **data})
