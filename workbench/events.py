"""The event: one row of the append-only `events` table, defined once.

    Event(kind="tool_call", agent="coder", duration_ms=3.2, payload={"tool": "run"})

`Event` is the only place that names the event columns. Everything else is derived from its fields:
`COLUMNS` (the writer's COPY, in table order), `PG_TYPES` (binary COPY types), `duckdb_ddl()` (the
analytics copy), `arrow_schema()` (the sync's batches), `READ_COLUMNS` (what readers select, the
store-assigned `seq` first) and `api_model()` (the REST API's response model). Adding a column means one
field here and one appended migration (workbench.store.migrations).

Kinds: `Kind` lists the ones workbench writes; any short non-empty string is accepted, so a plugin
can log its own kind without a change here.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from dataclasses import dataclass, field
from typing import Any


class Kind(enum.StrEnum):
    LLM_CALL = "llm_call"          # one logical model call (the gateway's LoggedModel span)
    LLM_ATTEMPT = "llm_attempt"    # one try inside it: retry, failover, cache hit, refusal
    AGENT_STEP = "agent_step"
    TOOL_CALL = "tool_call"
    SANDBOX_RUN = "sandbox_run"
    MESSAGE = "message"            # the agents' message bus
    STATUS = "status"              # a task's status change, committed with the status row
    TASK = "task"
    PLAN = "plan"
    SUBTASK = "subtask"
    AGENT = "agent"
    FINAL_ANSWER = "final_answer"
    ALERT = "alert"
    CONFIG = "config"
    HEALTH_CHECK = "health_check"
    MEMORY = "memory"              # workbench.memory: a retrieval, cache hit, store, merge or feedback
    ACCESS_DENIED = "access_denied"  # a request refused by the API-key guard (reason, path, no key material)


# What a kind's rows mean, for readers that must pick the right rows (the Data specialist's prompt): an
# llm_attempt sits inside an llm_call, so summing both counts a call's tokens and cost twice.
KIND_MEANINGS: dict[str, str] = {
    Kind.LLM_CALL: "one model call; count, sum tokens and cost of model calls over these rows",
    Kind.LLM_ATTEMPT: "one try inside an llm_call (retries, failover); never add to llm_call rows",
    Kind.AGENT_STEP: "one step of an agent or specialist",
    Kind.TOOL_CALL: "one tool call by an agent",
    Kind.SANDBOX_RUN: "one run of code in the sandbox",
    Kind.STATUS: "a task's status change",
    Kind.MEMORY: "one use of memory: payload.action is retrieve (used = entry id or null, similarity, why), "
                 "cache_hit (a stored verified solution answered the request), store, merge, skip, feedback or "
                 "strategy (a loop setting chosen from past outcomes: chose, explored, why)",
}


def _col(pg: str, duck: str, api: Any) -> dict[str, Any]:
    # api=None: a column the REST API does not show (the idempotency key)
    return {"pg": pg, "duck": duck, "api": api}


@dataclass(kw_only=True, slots=True)
class Event:
    """One execution record. Fields are the table's columns in table order; `seq` is assigned by Postgres."""

    event_id: str | bytes | None = field(default=None, metadata=_col("uuid", "UUID NOT NULL", None))  # None: a fresh one when written
    ts: Any = field(default=None, metadata=_col("timestamptz", "TIMESTAMPTZ NOT NULL", str))  # epoch seconds or datetime; None: now
    task_id: str | None = field(default=None, metadata=_col("uuid", "UUID", str))
    trace_id: str | None = field(default=None, metadata=_col("text", "VARCHAR", str))
    span_id: str | None = field(default=None, metadata=_col("text", "VARCHAR", str))
    parent_span_id: str | None = field(default=None, metadata=_col("text", "VARCHAR", str))
    kind: str = field(metadata=_col("text", "VARCHAR NOT NULL", str))
    agent: str | None = field(default=None, metadata=_col("text", "VARCHAR", str))
    model: str | None = field(default=None, metadata=_col("text", "VARCHAR", str))
    tokens_in: int | None = field(default=None, metadata=_col("int4", "INTEGER", int))
    tokens_out: int | None = field(default=None, metadata=_col("int4", "INTEGER", int))
    cost_usd: float | None = field(default=None, metadata=_col("float8", "DOUBLE", float))
    duration_ms: float | None = field(default=None, metadata=_col("float8", "DOUBLE", float))
    error: str | None = field(default=None, metadata=_col("text", "VARCHAR", str))
    payload: Any = field(default=None, metadata=_col("jsonb", "JSON", Any))

    def get(self, name: str, default: Any = None) -> Any:
        """A column, else a payload field (the gateway's outcome, call_id, ...): one lookup for both."""
        if name in _NAMES:
            value = getattr(self, name)
            return default if value is None else value
        payload = self.payload if isinstance(self.payload, dict) else {}
        return payload.get(name, default)

    def __getitem__(self, name: str) -> Any:
        if name not in _NAMES and not (isinstance(self.payload, dict) and name in self.payload):
            raise KeyError(name)
        return self.get(name)

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}


_FIELDS = dataclasses.fields(Event)
COLUMNS: tuple[str, ...] = tuple(f.name for f in _FIELDS)
_NAMES = frozenset(COLUMNS)
PG_TYPES: tuple[str, ...] = tuple(f.metadata["pg"] for f in _FIELDS)
READ_COLUMNS: tuple[str, ...] = ("seq", *(f.name for f in _FIELDS if f.metadata["api"] is not None))


def of(kind: str, fields: dict[str, Any]) -> Event:
    """An Event from keyword fields: columns by name, anything else merged into the payload."""
    extra = {k: v for k, v in fields.items() if k not in _NAMES}
    if extra:
        fields = {k: v for k, v in fields.items() if k in _NAMES}
        given = fields.get("payload")
        fields["payload"] = {**extra, **given} if isinstance(given, dict) else {**extra, "payload": given}
    fields.pop("kind", None)
    return Event(kind=kind, **fields)


def duckdb_ddl(table: str = "events") -> str:
    """The analytics copy: seq, then every column with its DuckDB type."""
    cols = ", ".join(f"{f.name} {f.metadata['duck']}" for f in _FIELDS)
    return f"CREATE TABLE IF NOT EXISTS {table} (seq BIGINT NOT NULL, {cols})"


@functools.cache
def arrow_schema() -> Any:
    """The sync's batch schema: seq, then every column; ts as epoch µs and JSON as text on the wire."""
    import pyarrow as pa

    wire = {"uuid": pa.string(), "timestamptz": pa.int64(), "text": pa.string(), "int4": pa.int32(),
            "float8": pa.float64(), "jsonb": pa.string()}
    return pa.schema([("seq", pa.int64()), *((f.name, wire[f.metadata["pg"]]) for f in _FIELDS)])


@functools.cache
def api_model() -> Any:
    """The REST API's event (pydantic): seq, then every shown column, ts as ISO text."""
    from pydantic import create_model

    shown: dict[str, Any] = {"seq": (int, ...)}
    for f in _FIELDS:
        kind = f.metadata["api"]
        if kind is None:
            continue
        required = f.name in ("ts", "kind")
        shown[f.name] = (kind, ...) if required else (kind if kind is Any else kind | None, None)
    return create_model("Event", **shown)
