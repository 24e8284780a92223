"""The tools an MCP client sees: the agents' own file, browser and http tools plus the log, code, shell and task
tools.

The file, browser and http tools are workbench.tools' (one definition for agents and MCP clients). The others need this
process's services (the analytics snapshot, the sandbox, the task API), so they are built around a
`Services` here; their schemas come from their signatures exactly as the agents' tools do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from workbench.errors import SandboxError, ToolError
from workbench.tools import BUILTIN_TOOLS, Tool, tool
from workbench.tools.browser import BROWSER_TOOLS
from workbench.tools.fetch import HTTP_TOOLS

if TYPE_CHECKING:
    from workbench.sandbox import Executor
    from workbench.tasks.api import TaskApi

MAX_QUERY_ROWS = 500
FILE_TOOLS = ("read_file", "list_files", "search_files", "write_file")


def _published_snapshot() -> Path | None:
    from workbench.agents.specialists.data import published_snapshot

    return published_snapshot()


def _store_tasks() -> TaskApi:
    from workbench.store import open_store
    from workbench.tasks.api import TaskApi
    from workbench.tasks.service import TaskService

    # No runner here: a submitted task waits, pending, until `workbench serve` queues it.
    return TaskApi(TaskService(open_store()))


def no_tasks() -> TaskApi:
    """The task API of a server started with --no-store: there is none."""
    raise ToolError("This MCP server was started with --no-store, so it has no task queue. Restart it without "
                    "--no-store to submit and follow tasks.")


def _sandbox() -> Executor:
    from workbench.sandbox import get_executor

    return get_executor()


@dataclass
class Services:
    """Where the non-file tools get their resources; each is looked up on first use (tests pass their own)."""

    snapshot: Callable[[], Path | None] = _published_snapshot
    tasks: Callable[[], TaskApi] = _store_tasks
    executor: Callable[[], Executor] = _sandbox
    query_timeout_s: float = 10.0
    _tasks: TaskApi | None = field(default=None, init=False, repr=False)

    def task_api(self) -> TaskApi:
        if self._tasks is None:
            self._tasks = self.tasks()
        return self._tasks


def catalog(services: Services | None = None) -> dict[str, Tool]:
    """Every tool the MCP server offers, by name."""
    services = services or Services()
    tools = ([BUILTIN_TOOLS[name] for name in FILE_TOOLS] + _service_tools(services) + list(BROWSER_TOOLS.values())
             + list(HTTP_TOOLS.values()))
    return {t.name: t for t in tools}


def _service_tools(services: Services) -> list[Tool]:
    @tool
    def query_db(sql: str, max_rows: int = 50) -> dict[str, Any]:
        """Run ONE read-only DuckDB SELECT over the execution log's analytics snapshot (tables events and
        tasks; `SELECT table_name, column_name FROM information_schema.columns` lists their columns).

        Args:
            sql: A single SELECT (WITH ... SELECT is fine); anything else is refused.
            max_rows: Most rows to return (1 to 500); `truncated` says when there were more.
        """
        from workbench.agents.specialists.data import check_select, open_snapshot, run_select

        text = check_select(sql)  # refused before the snapshot is even opened
        snapshot = services.snapshot()
        if snapshot is None:
            raise ToolError("There is no analytics snapshot yet: it is published by `workbench serve` (or a "
                            "`workbench submit --wait`) once events exist. Run one, then query again.")
        with open_snapshot(snapshot) as con:
            result = run_select(con, text, max_rows=max(1, min(max_rows, MAX_QUERY_ROWS)),
                                timeout_s=services.query_timeout_s)
        result["rows"] = [[_plain(v) for v in row] for row in result["rows"]]
        return result

    @tool(permissions=["runs_code"])
    def run_code(code: str, language: Literal["python", "typescript", "java"] = "python") -> dict[str, Any]:
        """Run a program in the isolated sandbox (no network, no host files, time and memory limits).

        Args:
            code: The program's source text.
            language: Its language.
        """
        from workbench.sandbox.runtimes import run_code as run_in_sandbox

        run = run_in_sandbox(language, code, executor=_isolated(services.executor()))
        result = run.result
        return {"ok": run.ok, "blocked": run.blocked, "exit_code": result.exit_code if result else None,
                "stdout": result.stdout if result else "", "stderr": result.stderr if result else "",
                "timed_out": result.timed_out if result else False,
                "scan": run.scan.as_dict() if run.blocked and run.scan else None}

    @tool(permissions=["runs_code"])
    def run_shell(command: str, files: dict[str, str] | None = None) -> dict[str, Any]:
        """Run a shell command (/bin/sh -c) in the isolated sandbox: a fresh work directory holding `files`,
        no network, no host files, time and memory limits. Nothing it writes reaches the host.

        Args:
            command: The command line, e.g. `python3 -c 'print(2**10)'` or `sort data.txt | uniq -c`.
            files: Files to put in its work directory first (relative path -> text).
        """
        executor = _isolated(services.executor())
        if not command.strip():
            raise ToolError("Give the command to run, e.g. `ls -la`.")
        result = executor.run(["/bin/sh", "-c", command], files or {})
        return {"exit_code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr,
                "timed_out": result.timed_out, "killed_reason": result.killed_reason,
                "stdout_truncated": result.stdout_truncated, "stderr_truncated": result.stderr_truncated}

    @tool(read_only=False)
    def submit_task(prompt: str, title: str = "", model: str | None = None) -> dict[str, Any]:
        """Submit a task for the workbench's agents; returns its id (task_status and task_result follow it).

        Args:
            prompt: What to do.
            title: A short title (optional).
            model: provider:model or alias; the default model when omitted.
        """
        from workbench.tasks.records import NewTask

        task = services.task_api().create_and_submit(NewTask.of(prompt=prompt, title=title, model=model))
        return {"id": task.id, "status": task.status}

    @tool
    def task_status(task_id: str) -> dict[str, Any]:
        """A task's status and timing.

        Args:
            task_id: The id submit_task returned.
        """
        task = services.task_api().get(task_id)
        return task.model_dump(mode="json", include={"id", "title", "status", "error", "created_at",
                                                     "started_at", "finished_at", "attempts"})

    @tool
    def task_result(task_id: str) -> dict[str, Any]:
        """A finished task's result (or its error); says so when the task has not finished yet.

        Args:
            task_id: The id submit_task returned.
        """
        from workbench.tasks import states

        task = services.task_api().get(task_id)
        done = task.status in states.TERMINAL
        return {"id": task.id, "status": task.status, "finished": done,
                "result": task.model_dump(mode="json")["result"] if done else None, "error": task.error}

    return [query_db, run_code, run_shell, submit_task, task_status, task_result]


def _isolated(executor: Executor) -> Executor:
    if executor.name == "unsafe-host":
        raise SandboxError("Refused: the sandbox is set to unsafe-host (no isolation), and MCP clients never "
                           "run code on the host. Set WORKBENCH_SANDBOX to auto, bwrap or docker.")
    return executor


def _plain(value: Any) -> Any:
    """A JSON value for one SQL cell (timestamps, decimals and UUIDs as text)."""
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)
