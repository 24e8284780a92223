"""Which tasks a list shows: a typed filter (status, model, agent, title, cost, duration, errors, creation
dates), its URL form (so a filtered view can be shared and reloaded), and the queries it drives in Postgres:
the matching task lines, the cost of their model calls per model over time, and the values the filter's
choices can take.

Every query is one fixed SQL text: each condition is written as `(%(value)s IS NULL OR <test>)`, so a filter
left empty switches its test off and user input only ever travels as a bound parameter, never as SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Literal, get_args

from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workbench.errors import WorkbenchError
from workbench.tasks.overview import TaskLine, TaskLines
from workbench.tasks.states import Status

Bucket = Literal["day", "hour"]
DEFAULT_MODEL = "(default)"  # what a task created without a model shows in its model column


class FilterError(WorkbenchError):
    """A filter value that cannot be used (the message names the field and what it accepts)."""

    http_status = 400


class TaskFilter(BaseModel):
    """Tasks to show; a field left None (or "") does not filter."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Status | None = None
    model: str | None = Field(None, description="The task's model, or a model any of its calls used")
    agent: str | None = Field(None, description="An agent (specialist) that has an event in the task")
    search: str = Field("", description="Title contains (case-insensitive)")
    cost_min: float | None = Field(None, ge=0, description="USD of the task's model calls, at least")
    cost_max: float | None = Field(None, ge=0)
    duration_min: float | None = Field(None, ge=0, description="Seconds from start to finish, at least")
    duration_max: float | None = Field(None, ge=0)
    has_error: bool | None = Field(None, description="The task or one of its events carries an error")
    created_from: dt.date | None = Field(None, description="Created on or after this day (UTC)")
    created_to: dt.date | None = Field(None, description="Created on or before this day (UTC)")

    @model_validator(mode="after")
    def _ranges(self) -> TaskFilter:
        for low, high, what in (("cost_min", "cost_max", "cost"), ("duration_min", "duration_max", "duration"),
                                ("created_from", "created_to", "date")):
            a, b = getattr(self, low), getattr(self, high)
            if a is not None and b is not None and a > b:
                raise ValueError(f"the {what} range is empty ({a} > {b}): make the lower bound at most the upper one")
        return self

    def params(self) -> dict:
        """The bound parameters of the queries below."""
        return {"status": self.status, "model": self.model or None, "agent": self.agent or None,
                "search": self.search, "like": f"%{_escape_like(self.search)}%", "cost_min": self.cost_min,
                "cost_max": self.cost_max, "dur_min": self.duration_min, "dur_max": self.duration_max,
                "has_error": self.has_error, "from": self.created_from, "to": self.created_to}


def _escape_like(text: str) -> str:
    """`text` matched literally by ILIKE: its own % and _ are not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- the URL form ----------------------------------------------------------------------------------------

# query key -> field; short keys keep shared links readable.
QUERY_KEYS = {"status": "status", "model": "model", "agent": "agent", "q": "search", "cost_min": "cost_min",
              "cost_max": "cost_max", "dur_min": "duration_min", "dur_max": "duration_max", "error": "has_error",
              "from": "created_from", "to": "created_to"}
_FIELD_KEYS = {field: key for key, field in QUERY_KEYS.items()}
_ERROR_WORDS = {"yes": True, "no": False}


def to_query(f: TaskFilter) -> dict[str, str]:
    """The filter's non-empty fields as URL query parameters (the inverse of `from_query`)."""
    out: dict[str, str] = {}
    for field, value in f.model_dump(exclude_defaults=True).items():
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            text = "yes" if value else "no"
        elif isinstance(value, float):
            text = f"{value:g}"
        else:
            text = str(value)
        out[_FIELD_KEYS[field]] = text
    return out


def from_query(query: Mapping[str, object]) -> tuple[TaskFilter, list[str]]:
    """The filter a URL's query asks for, and one line for each value that could not be used (that value is
    left out, the rest still apply). Keys that are not filters (a task id) are ignored."""
    values: dict[str, object] = {}
    problems: list[str] = []
    for key, field in QUERY_KEYS.items():
        raw = query.get(key)
        if isinstance(raw, (list, tuple)):
            raw = raw[-1] if raw else None
        if raw is None or str(raw).strip() == "":
            continue
        text = str(raw).strip()
        if field == "has_error":
            if text.lower() not in _ERROR_WORDS:
                problems.append(f"error={text!r} is not a choice: use error=yes or error=no")
                continue
            values[field] = _ERROR_WORDS[text.lower()]
            continue
        try:
            TaskFilter(**{field: text})
        except ValidationError as exc:
            problems.append(f"{key}={text!r} was ignored: {_reason(exc)}")
            continue
        values[field] = text
    try:
        return TaskFilter(**values), problems
    except ValidationError as exc:  # bounds that are fine alone but not together
        for low, high in (("cost_min", "cost_max"), ("duration_min", "duration_max"), ("created_from", "created_to")):
            values.pop(low, None), values.pop(high, None)
        problems.append(f"{_reason(exc)}; the range was ignored")
        return TaskFilter(**values), problems


def _reason(exc: ValidationError) -> str:
    err = exc.errors()[0]
    msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
    if err.get("type") == "literal_error":
        return f"expected one of {', '.join(get_args(Status))}"
    return msg


def parse(query: Mapping[str, object]) -> TaskFilter:
    """`from_query`, refusing instead of ignoring: for callers that must not guess (the API, the CLI)."""
    f, problems = from_query(query)
    if problems:
        raise FilterError("; ".join(problems))
    return f


# --- queries ---------------------------------------------------------------------------------------------

_CALLS_COST = "(SELECT coalesce(sum(cost_usd), 0) FROM events WHERE task_id = t.id AND kind = 'llm_call')"
# The tasks the filter matches, without their calls' totals: those are summed only where a cost bound asks
# for them (an OR whose first arm holds skips its second) and for the page of rows shown, not for every task.
_MATCHED = f"""
WITH matched AS (
    SELECT t.id, t.title, t.status, coalesce(t.kind, '') AS kind, coalesce(t.model, '(default)') AS model,
           t.priority, t.created_at, date_part('epoch', t.finished_at - t.started_at) AS duration_s
    FROM tasks t
    WHERE (%(status)s::text IS NULL OR t.status = %(status)s)
      AND (%(search)s = '' OR t.title ILIKE %(like)s)
      AND (%(model)s::text IS NULL OR coalesce(t.model, '(default)') = %(model)s
           OR EXISTS (SELECT 1 FROM events x WHERE x.task_id = t.id AND x.kind = 'llm_call' AND x.model = %(model)s))
      AND (%(agent)s::text IS NULL OR EXISTS (SELECT 1 FROM events x WHERE x.task_id = t.id AND x.agent = %(agent)s))
      AND ((%(cost_min)s::float8 IS NULL AND %(cost_max)s::float8 IS NULL)
           OR {_CALLS_COST} BETWEEN coalesce(%(cost_min)s, '-infinity') AND coalesce(%(cost_max)s, 'infinity'))
      AND (%(dur_min)s::float8 IS NULL OR date_part('epoch', t.finished_at - t.started_at) >= %(dur_min)s)
      AND (%(dur_max)s::float8 IS NULL OR date_part('epoch', t.finished_at - t.started_at) <= %(dur_max)s)
      AND (%(has_error)s::boolean IS NULL OR %(has_error)s = (
           coalesce(t.error, '') <> ''
           OR EXISTS (SELECT 1 FROM events x WHERE x.task_id = t.id AND coalesce(x.error, '') <> '')))
      AND (%(from)s::date IS NULL OR t.created_at >= (%(from)s::date)::timestamp AT TIME ZONE 'UTC')
      AND (%(to)s::date IS NULL OR t.created_at < (%(to)s::date + 1)::timestamp AT TIME ZONE 'UTC')
)
"""
_LINES = _MATCHED + """
SELECT m.id::text AS id, m.title, m.status, m.kind, m.model, m.priority, m.created_at, m.duration_s, e.tokens,
       e.cost_usd, (SELECT count(*) FROM matched) AS total
FROM (SELECT * FROM matched ORDER BY created_at DESC LIMIT %(limit)s) m LEFT JOIN LATERAL (
    SELECT coalesce(sum(tokens_in), 0) + coalesce(sum(tokens_out), 0) AS tokens, sum(cost_usd) AS cost_usd
    FROM events WHERE task_id = m.id AND kind = 'llm_call') e ON true  -- steps copy their calls' tokens
ORDER BY m.created_at DESC
"""
_COUNT = _MATCHED + "SELECT count(*) AS n FROM matched"
_COST = _MATCHED + """
SELECT date_trunc(%(bucket)s, ev.ts, 'UTC') AS bucket, coalesce(ev.model, '(unknown)') AS model,
       coalesce(sum(ev.cost_usd), 0) AS cost_usd, count(*) AS calls, count(ev.cost_usd) AS priced_calls,
       coalesce(sum(ev.tokens_in), 0) + coalesce(sum(ev.tokens_out), 0) AS tokens
FROM events ev JOIN matched m ON ev.task_id = m.id
WHERE ev.kind = 'llm_call'
GROUP BY 1, 2 ORDER BY 1, 2
"""
_MODELS = """
SELECT DISTINCT coalesce(model, '(default)') AS v FROM tasks
UNION SELECT DISTINCT model FROM events WHERE kind = 'llm_call' AND model IS NOT NULL AND task_id IS NOT NULL
ORDER BY 1
"""
_AGENTS = "SELECT DISTINCT agent AS v FROM events WHERE task_id IS NOT NULL AND coalesce(agent, '') <> '' ORDER BY 1"


class CostPoint(BaseModel):
    """What the model calls of the matching tasks cost in one time bucket, for one model."""

    bucket: dt.datetime  # start of the hour or day (UTC)
    model: str
    cost_usd: float
    calls: int
    priced_calls: int  # calls with a price (local calls are priced by CPU time; some providers are unpriced)
    tokens: int


class FilterChoices(BaseModel):
    """The values the model and agent filters can take (those present in the store)."""

    models: list[str]
    agents: list[str]


def lines(conn, f: TaskFilter, limit: int) -> TaskLines:
    """The matching tasks, newest first (at most `limit`), and how many match in all."""
    cur = conn.cursor(row_factory=dict_row)
    rows = cur.execute(_LINES, {**f.params(), "limit": limit}).fetchall()
    if rows:
        total = rows[0]["total"]
    elif limit > 0:
        total = 0
    else:
        total = cur.execute(_COUNT, f.params()).fetchone()["n"]
    return TaskLines(items=[TaskLine(**{k: v for k, v in r.items() if k != "total"}) for r in rows], total=total)


def cost_over_time(conn, f: TaskFilter, bucket: Bucket = "day") -> list[CostPoint]:
    """Cost of the matching tasks' model calls per `bucket` (UTC) and per model, oldest first."""
    if bucket not in get_args(Bucket):
        raise FilterError(f"Unknown time bucket {bucket!r}: use one of {', '.join(get_args(Bucket))}.")
    cur = conn.cursor(row_factory=dict_row)
    return [CostPoint(**r) for r in cur.execute(_COST, {**f.params(), "bucket": bucket}).fetchall()]


def choices(conn) -> FilterChoices:
    cur = conn.cursor(row_factory=dict_row)
    return FilterChoices(models=[r["v"] for r in cur.execute(_MODELS).fetchall()],
                         agents=[r["v"] for r in cur.execute(_AGENTS).fetchall()])
