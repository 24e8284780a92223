"""Data: answers questions over the execution log with DuckDB SQL on a read-only snapshot.

Pipeline (not a free loop: a small model writes one query far more reliably than it drives tools):
describe the snapshot's tables -> the model writes {"sql": ...} under a JSON schema -> only a single
SELECT passes -> it runs on a connection opened read-only with external access off and the
configuration locked -> the answer shows the SQL it ran and the result table. A refused or failing
query is re-asked once with the error.

Two independent walls stand between a query and the machine: the statement check (one SELECT only,
so ATTACH, COPY, SET, PRAGMA, INSTALL never reach DuckDB) and DuckDB's own configuration
(`enable_external_access=false` refuses read_text('/etc/passwd'), read_csv, ATTACH, COPY ... TO even if
the first wall had a hole; `lock_configuration=true` refuses SET enable_external_access=true).
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench import telemetry
from workbench.agents.agent import Limits, resolve_model
from workbench.agents.calls import model_step
from workbench.agents.guards import Budget
from workbench.agents.loop import tally
from workbench.agents.specialist import Specialist, SpecialistCall, SubtaskResult
from workbench.agents.steps import AgentResult, Step
from workbench.errors import QueryRefused, WorkbenchError
from workbench.events import KIND_MEANINGS
from workbench.tools import ToolCall

SAFE_CONFIG = {
    "enable_external_access": False,  # no files, no ATTACH, no COPY TO, no extension downloads
    "lock_configuration": True,  # ... and no SET to turn it back on
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "threads": 1,  # a shared 2-core machine: analytics must not starve the model
    "memory_limit": "256MB",
}
SQL_SCHEMA = {"type": "object", "properties": {"sql": {"type": "string", "maxLength": 600}}, "required": ["sql"]}
SAMPLE_VALUES = 6  # distinct values shown per text column, so the model uses the real spellings
SYSTEM_PROMPT = (
    "You are the Data specialist. You answer questions about an execution log stored in DuckDB by writing "
    "ONE DuckDB SQL SELECT query. Use only the tables and columns listed. Reply as JSON: {\"sql\": \"SELECT ...\"}."
)


class DataError(WorkbenchError):
    """The snapshot cannot be opened or a query failed to run (not a refusal)."""


# --- the snapshot ---------------------------------------------------------------------------------


@contextlib.contextmanager
def open_snapshot(path: str | Path) -> Iterator[Any]:
    """A read-only DuckDB connection over a DuckDB file or a folder of Parquet files (one table per file)."""
    import duckdb

    path = Path(path)
    if not path.exists():
        raise DataError(f"The execution-log snapshot {path} does not exist. Pass a DuckDB file or a Parquet "
                        f"folder: run_specialist(..., options={{'snapshot': path}}) or specialists.data.options.")
    try:
        con = duckdb.connect(str(path), read_only=True, config=SAFE_CONFIG) if path.is_file() else _from_parquet(path)
    except duckdb.IOException as exc:
        raise DataError(f"Cannot open {path}: {exc}. Another process holds it read-write (the store's writer); "
                        f"give the Data specialist a copy or a Parquet export instead.") from None
    try:
        yield con
    finally:
        con.close()


def published_snapshot() -> Path | None:
    """The store's latest analytics snapshot (Parquet + manifest, published by the sync), if there is one."""
    from workbench.store import analytics

    root = analytics.analytics_dir()
    return root if (root / analytics.MANIFEST).exists() else None


def _from_parquet(folder: Path) -> Any:
    """Load Parquet into an in-memory database *before* external access is switched off and locked."""
    import duckdb

    from workbench.store import analytics

    manifest = analytics.read_manifest(folder)
    if manifest is not None:  # the store's published snapshot: exactly the files of its latest generation
        tables = {"events": "[" + ", ".join(f"'{folder / p['file']}'" for p in manifest["events"]) + "]"}
        if manifest.get("tasks"):
            tables["tasks"] = f"'{folder / manifest['tasks']}'"
        if not manifest["events"]:
            del tables["events"]
    else:
        files = sorted(folder.glob("*.parquet"))
        tables = {f.stem: f"'{f}'" for f in files}
        tables.update({d.name: f"'{d}/*.parquet'" for d in sorted(folder.iterdir())
                       if d.is_dir() and any(d.glob("*.parquet"))})
    if not tables:
        raise DataError(f"{folder} holds no Parquet files (expected events.parquet or events/*.parquet).")
    con = duckdb.connect(":memory:", config={k: v for k, v in SAFE_CONFIG.items()
                                             if k not in ("enable_external_access", "lock_configuration")})
    for name, source in tables.items():
        con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM read_parquet({source})')
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def describe(con: Any) -> str:
    """`events(seq BIGINT, agent VARCHAR [values: 'data', 'general'], ...)` for every table."""
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
    lines = []
    for table in tables:
        cols = con.execute("SELECT column_name, data_type FROM information_schema.columns "
                           "WHERE table_name = ? ORDER BY ordinal_position", [table]).fetchall()
        parts = [f"{name} {dtype}{_values(con, table, name) if dtype == 'VARCHAR' else ''}" for name, dtype in cols]
        count = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
        lines.append(f"{table}({', '.join(parts)})  -- {count} rows")
        if table == "events" and any(name == "kind" for name, _ in cols):
            lines += _kind_meanings(con)
    return "\n".join(lines)


def _kind_meanings(con: Any) -> list[str]:
    """What the event kinds present mean: a small model reads "LLM calls" as llm_attempt rows otherwise."""
    present = {r[0] for r in con.execute("SELECT DISTINCT kind FROM events").fetchall()}
    return [f"  -- kind '{kind}': {meaning}" for kind, meaning in KIND_MEANINGS.items() if kind in present]


def _values(con: Any, table: str, column: str) -> str:
    rows = con.execute(f'SELECT "{column}" FROM "{table}" WHERE "{column}" IS NOT NULL GROUP BY 1 '
                       f"ORDER BY count(*) DESC LIMIT {SAMPLE_VALUES + 1}").fetchall()
    values = [repr(r[0][:40]) for r in rows]
    if not values:
        return ""
    many = len(values) > SAMPLE_VALUES
    return f" [{'e.g.' if many else 'values:'} {', '.join(values[:3] if many else values)}]"


def check_select(sql: str) -> str:
    """The statement, if it is exactly one SELECT; QueryRefused otherwise."""
    import duckdb

    text = sql.strip().rstrip(";").strip()
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.ParserException as exc:
        raise DataError(f"The SQL does not parse: {exc}") from None
    kinds = [s.type.name for s in statements]
    if kinds != ["SELECT"]:
        raise QueryRefused(f"Refused: only one read-only SELECT statement may run, got {', '.join(kinds) or 'nothing'}. "
                           f"Rewrite the query as a single SELECT (WITH ... SELECT is fine).")
    return text


def run_select(con: Any, sql: str, *, max_rows: int = 50, timeout_s: float = 10.0) -> dict[str, Any]:
    """Run one SELECT: {"sql", "columns", "rows", "truncated"}; QueryRefused / DataError on failure."""
    import duckdb

    text = check_select(sql)
    timer = threading.Timer(timeout_s, con.interrupt)  # DuckDB has no statement timeout of its own
    timer.start()
    try:
        cursor = con.execute(text)
        rows = cursor.fetchmany(max_rows + 1)
        columns = [d[0] for d in cursor.description or []]
    except duckdb.PermissionException as exc:
        raise QueryRefused(f"Refused by DuckDB: {exc}. The Data specialist only reads the snapshot's tables.") from None
    except duckdb.InterruptException:
        raise DataError(f"The query ran past {timeout_s:g} s and was stopped; aggregate more or filter first.") from None
    except duckdb.Error as exc:
        raise DataError(f"The query failed: {type(exc).__name__}: {exc}") from None
    finally:
        timer.cancel()
    return {"sql": text, "columns": columns, "rows": [list(r) for r in rows[:max_rows]], "truncated": len(rows) > max_rows}


_MISSING_COLUMN = re.compile(r'Referenced column "(?P<column>[^"]+)" not found')


def column_hint(con: Any, error: str | None) -> str:
    """Which tables hold the column a failed query could not find. Told only that a column is missing, a
    small model asks the same table again (tasks per status, looked up in `events`); told where it is, it
    moves to that table."""
    match = _MISSING_COLUMN.search(error or "")
    if match is None:
        return ""
    import duckdb

    column = match["column"]
    try:
        tables = [t for (t,) in con.execute(
            "SELECT DISTINCT table_name FROM information_schema.columns WHERE lower(column_name) = lower(?) "
            "ORDER BY table_name", [column]).fetchall()]
    except duckdb.Error:  # a hint only: the retry goes on without it
        return ""
    if not tables:
        return f' No table has a column "{column}": use the columns the schema lists.'
    which = "that table" if len(tables) == 1 else "one of those"
    return f' The column "{column}" is in {", ".join(tables)}: query {which}.'


def markdown_table(columns: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# --- the specialist -------------------------------------------------------------------------------


def handle(call: SpecialistCall) -> SubtaskResult:
    snapshot = call.options.get("snapshot") or published_snapshot()
    if not snapshot:
        raise DataError("The Data specialist has no execution-log snapshot: pass options={'snapshot': path} "
                        "(a DuckDB file copy or a Parquet folder) or set specialists.data.options.snapshot.")
    limits = call.agent.limits
    budget = call.budget.child(max_tokens=limits.max_tokens, max_usd=limits.budget_usd, timeout_s=limits.timeout_s,
                               name="agent data")
    llm = resolve_model(call.model)
    steps: list[Step] = []
    query: dict[str, Any] | None = None
    with telemetry.span("agent", agent="data", task_id=call.task_id) as span, open_snapshot(snapshot) as con:
        messages = [{"role": "system", "content": call.agent.system_prompt},
                    {"role": "user", "content": _question(call, describe(con))}]
        while len(steps) < limits.max_steps:
            step = _ask_sql(llm, messages, call, budget, len(steps) + 1)
            steps.append(step)
            if step.stop_reason is None and step.action is not None:
                query = _execute(con, step, call.options)
            last = query is not None or step.stop_reason is not None or len(steps) == limits.max_steps
            if last:
                _close(step, query)
            else:
                messages += [{"role": "assistant", "content": step.model_output or "(no reply)"},
                             {"role": "user", "content": f"That did not work: {step.error}."
                                                         f"{column_hint(con, step.error)} Reply with a corrected "
                                                         f'query as JSON: {{"sql": "SELECT ..."}}.'}]
            telemetry.emit("agent_step", **step.as_event())
            tally(span, step)
            if last:
                break
    result = AgentResult.from_steps("data", steps)
    return SubtaskResult.from_agent(call.subtask, result, data=query or {}, output=result.output)


def _question(call: SpecialistCall, schema: str) -> str:
    context = "".join(f"\n[{key}] {text}" for key, text in call.context.items())
    extra = f"\nResults of earlier subtasks:{context}\n" if context else ""
    return (f"Tables:\n{schema}\n{extra}\nQuestion: {call.subtask.instructions.strip()}\n\n"
            f"Write one DuckDB SELECT query that answers the question. For \"per X\" or \"each X\" questions "
            f"GROUP BY X and select X too; for one number (how many, the total) select that number alone. "
            f'Reply as JSON: {{"sql": "SELECT ..."}}')


def _ask_sql(llm: Any, messages: list[dict], call: SpecialistCall, budget: Budget, number: int) -> Step:
    step = model_step(llm, messages, budget, agent="data", number=number,
                      max_tokens=call.agent.limits.max_tokens_per_call,
                      options={"schema": SQL_SCHEMA, "temperature": 0.0}).step
    if step.stop_reason is None and step.error is None:
        sql = (step.action or {}).get("sql")  # the reply under SQL_SCHEMA; the step's action is the query
        if isinstance(sql, str) and sql.strip():
            step.action, step.parsed_from = {"tool": "duckdb_sql", "arguments": {"sql": sql}}, "schema"
        else:
            step.action, step.error = None, 'the reply had no "sql" string'
    return step


def _execute(con: Any, step: Step, options: dict[str, Any]) -> dict[str, Any] | None:
    """Run the step's SQL; the outcome (rows, refusal or error) is a tool call on the step."""
    sql = with_group_keys(step.action["arguments"]["sql"])
    step.action["arguments"]["sql"] = sql
    record = ToolCall("duckdb_sql", {"sql": sql})
    began = time.perf_counter()
    query = None
    try:
        query = run_select(con, sql, max_rows=int(options.get("max_rows", 50)),
                           timeout_s=float(options.get("query_timeout_s", 10)))
        record.result = f"{len(query['rows'])} rows"
    except QueryRefused as exc:
        record.error, record.refused = str(exc), True
    except DataError as exc:
        record.error = str(exc)
    record.duration_ms = (time.perf_counter() - began) * 1000
    step.tool_calls.append(record)
    step.error = record.error
    telemetry.emit("tool_call", agent="data", duration_ms=record.duration_ms, error=record.error,
               payload={"tool": "duckdb_sql", "arguments": {"sql": sql}, "refused": record.refused,
                        "result": record.result})
    return query


_GROUPED = re.compile(r"^\s*SELECT\s+(?P<select>.+?)\s+FROM\s+.+?\s+GROUP\s+BY\s+(?P<keys>[\w\s,]+?)"
                      r"(?:\s+(?:HAVING|ORDER|LIMIT|QUALIFY)\b.*)?;?\s*$", re.IGNORECASE | re.DOTALL)


def with_group_keys(sql: str) -> str:
    """The query with its GROUP BY columns selected first when it left them out: a per-agent average
    without the agent's name cannot be read (small models drop the key). Plain column names only."""
    match = _GROUPED.match(sql)
    if match is None or re.match(r"\s*DISTINCT\b", match["select"], re.IGNORECASE) or \
            re.search(r"\bBY\s+\d", sql, re.IGNORECASE):  # positions would shift: ORDER BY 1
        return sql
    keys = [k.strip() for k in match["keys"].split(",")]
    if not all(re.fullmatch(r"[A-Za-z_]\w*", k) for k in keys):
        return sql
    missing = [k for k in keys if not re.search(rf"\b{k}\b", match["select"], re.IGNORECASE)]
    if not missing:
        return sql
    at = match.start("select")
    return sql[:at] + ", ".join(missing) + ", " + sql[at:]


def _close(step: Step, query: dict[str, Any] | None) -> None:
    """The last step: the answer (SQL + table) or why there is none."""
    if query is None:
        step.stop_reason = step.stop_reason or "max_steps"
        step.error = f"No query ran successfully ({step.error})."
        return
    shown = "first " if query["truncated"] else ""
    step.final_answer = (f"SQL I ran on the execution-log snapshot:\n```sql\n{query['sql']}\n```\n"
                         f"Result ({shown}{len(query['rows'])} rows):\n{markdown_table(query['columns'], query['rows'])}")
    step.stop_reason, step.error = "final_answer", None


def _health(spec: Specialist) -> tuple[bool, str]:
    try:
        import duckdb  # noqa: F401
    except ImportError:
        return False, "duckdb is not installed (pip install duckdb)"
    snapshot = spec.options.get("snapshot")
    if snapshot and not Path(snapshot).exists():
        return False, f"snapshot {snapshot} does not exist"
    return True, f"snapshot {snapshot}" if snapshot else "ready (the caller passes a snapshot per call)"


SPECIALIST = Specialist(
    name="data",
    description="Answers questions about this workbench's own activity with SQL over its execution log: its "
                "tasks, agents and specialists, models, LLM calls, tokens, cost, durations, failures (counts, "
                "totals, averages, the slowest, the most, per model or per agent).",
    handler=handle,
    system_prompt=SYSTEM_PROMPT,
    keywords=("sql", "log", "execution log", "average", "cost", "tokens", "how many", "count", "per model",
              "per agent", "slowest", "errors", "query"),
    limits=Limits(max_steps=2, max_tokens=5000, max_tokens_per_call=200, timeout_s=120),
    options={"snapshot": None, "max_rows": 50, "query_timeout_s": 10},
    health=_health,
)
