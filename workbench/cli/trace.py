"""`workbench trace ID`: the span tree of a task (agents → LLM calls, tool calls, sandbox runs)."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator

import typer
from rich.console import Console

from workbench import traces
from workbench.cli.params import task_id_argument
from workbench.config import get_settings
from workbench.tasks.client import backend

err = Console(stderr=True, soft_wrap=True)


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The OTLP exporter logs every retry; the CLI reports a failed export once, as one line."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def register(app: typer.Typer) -> None:
    @app.command()
    def trace(
        task_id: str = task_id_argument("Task id (= trace id; `workbench tasks list` lists them)."),
        as_json: bool = typer.Option(False, "--json", help="Nested JSON: totals and the tree of events."),
        otlp: bool = typer.Option(False, "--otlp", help="Also export the spans to WORKBENCH_OTLP_ENDPOINT."),
    ) -> None:
        """Span tree of a task with durations, tokens and cost (tokens and cost summed over LLM calls)."""
        if otlp:
            from workbench import otel

            exporter = otel.default_exporter()  # first: a missing endpoint fails before the store is opened
        with backend() as b:
            # The API and the store answer one page of rows at a time; a long task needs several.
            events = traces.fetch_all(lambda after: b.events(task_id, after))
            if not events:
                b.get(task_id)  # unknown id: one line (a malformed one was refused while parsing)
        tree = traces.build_tree(events)
        if as_json:
            print(json.dumps({"task_id": task_id, "totals": traces.totals(events), "tree": traces.as_json(tree)},
                             default=str))
        else:
            print(traces.render(tree) if events else f"trace {task_id}\n(no events yet)")
        if otlp:
            try:
                with _quiet("opentelemetry"):
                    spans = otel.export_events(events, exporter)
            finally:
                exporter.shutdown()
            err.print(f"exported {spans} spans to {get_settings().otlp_endpoint}", highlight=False)
