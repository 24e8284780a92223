"""One pipeline run: papermill executes the notebook as a Dask task in WORKBENCH_HOME/pipelines/runs/<id>/,
nbconvert renders the executed notebook to HTML next to it, and the caller records the run.

The Dask task (`execute_notebook`) only touches files, so a worker needs no store; the process that
submits it (the server's scheduler, or `workbench pipelines run`) writes the `pipeline_runs` row and the
run's span (`pipeline_run`, trace id = run id).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from workbench import telemetry
from workbench.pipelines import history, spec
from workbench.pipelines.history import RunStart
from workbench.pipelines.spec import Pipeline

log = logging.getLogger(__name__)
EXECUTED = "executed.ipynb"
HTML = "executed.html"
HOME_PARAMETER = "home"  # given the run's WORKBENCH_HOME when the notebook declares it and nobody set it


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NotebookJob:
    """What the Dask task needs (picklable; paths as strings)."""

    notebook: str
    workdir: str
    parameters: dict[str, Any]
    cell_timeout_s: float
    home: str


@dataclass(frozen=True)
class NotebookResult:
    ok: bool
    output_notebook: str | None
    output_html: str | None
    failed_cell: int | None = None
    error: str | None = None


def execute_notebook(job: NotebookJob) -> NotebookResult:
    """Runs on a Dask worker: the notebook under papermill, then its HTML rendering (even when a cell
    failed: the rendering shows the traceback where it happened)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    workdir = Path(job.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / EXECUTED
    params = dict(job.parameters)
    if HOME_PARAMETER in papermill.inspect_notebook(job.notebook) and HOME_PARAMETER not in params:
        params[HOME_PARAMETER] = job.home
    failed_cell = error = None
    try:
        papermill.execute_notebook(job.notebook, str(out), parameters=params, cwd=str(workdir),
                                   kernel_name="python3", progress_bar=False, log_output=False,
                                   execution_timeout=job.cell_timeout_s)
    except PapermillExecutionError as exc:
        failed_cell = _source_index(out, exc.cell_index)
        error = f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # noqa: BLE001 - a dead kernel or a timeout is a failed run, recorded as such
        error = f"{type(exc).__name__}: {exc}"
    html = _render_html(out) if out.exists() else None
    return NotebookResult(ok=error is None, output_notebook=str(out) if out.exists() else None,
                          output_html=html, failed_cell=failed_cell, error=error)


def _source_index(executed: Path, cell_index: int) -> int:
    """papermill counts its injected-parameters cell; the author's notebook does not have it."""
    import nbformat

    try:
        cells = nbformat.read(str(executed), as_version=4).cells
    except Exception:  # noqa: BLE001 - an unreadable output keeps papermill's own index
        return cell_index
    injected = [i for i, c in enumerate(cells) if "injected-parameters" in c.get("metadata", {}).get("tags", [])]
    return cell_index - 1 if injected and injected[0] < cell_index else cell_index


def _render_html(executed: Path) -> str | None:
    import nbformat
    from nbconvert import HTMLExporter

    try:
        body, _ = HTMLExporter().from_notebook_node(nbformat.read(str(executed), as_version=4))
    except Exception as exc:  # noqa: BLE001 - the executed notebook is kept even when rendering fails
        log.warning("HTML rendering of %s failed: %s", executed, exc)
        return None
    html = executed.with_name(HTML)
    html.write_text(body, encoding="utf-8")
    return str(html)


class PipelineRunner:
    """Starts runs on the Dask cluster and records them; thread-safe (the scheduler runs several)."""

    def __init__(self, store, client, home: Path, clock: Callable[[], datetime] = utcnow):
        self.store, self.client, self.home, self.clock = store, client, Path(home), clock
        self._futures: dict[str, Any] = {}
        self._lock = threading.Lock()

    def prepare(self, pipeline: Pipeline, parameters: dict[str, Any] | None = None, *, trigger: str = "manual",
                scheduled_for: datetime | None = None) -> RunStart:
        """A new run's row (not written yet); the parameters are checked here."""
        run_id = str(uuid.uuid4())
        return RunStart(id=run_id, pipeline=pipeline.name, trigger=trigger,
                        parameters=spec.coerce(pipeline, parameters or {}), started_at=self.clock(),
                        workdir=str(self.home / "pipelines" / "runs" / run_id), scheduled_for=scheduled_for)

    def run(self, pipeline: Pipeline, parameters: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        """Check, record, execute and wait; returns the finished `pipeline_runs` row."""
        run = self.prepare(pipeline, parameters, **kw)
        with self.store.connection() as conn:
            history.insert_start(conn, run)
        return self.execute(pipeline, run)

    def execute(self, pipeline: Pipeline, run: RunStart) -> dict[str, Any]:
        """Run a recorded start on Dask and record how it ended (never raises for a failed notebook)."""
        job = NotebookJob(notebook=str(pipeline.notebook_path), workdir=run.workdir, parameters=run.parameters,
                          cell_timeout_s=pipeline.spec.cell_timeout_s, home=str(self.home))
        payload = {"pipeline": run.pipeline, "run_id": run.id, "trigger": run.trigger,
                   "parameters": run.parameters, "workdir": run.workdir}
        started = time.perf_counter()
        with telemetry.use(telemetry.Context(trace_id=run.id)), \
                telemetry.span("pipeline_run", agent="pipelines", payload=payload) as sp:
            try:
                future = self.client.submit(execute_notebook, job, key=f"pipeline-{run.pipeline}-{run.id}",
                                            pure=False)
                with self._lock:
                    self._futures[run.id] = future
                result = future.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker or a cancelled run is a failed run
                result = NotebookResult(ok=False, output_notebook=None, output_html=None,
                                        error=f"{type(exc).__name__}: {exc}".rstrip(": "))
            finally:
                with self._lock:
                    self._futures.pop(run.id, None)
            duration_ms = (time.perf_counter() - started) * 1000
            status = "completed" if result.ok else "failed"
            history.finish(self.store, run.id, status=status, finished_at=self.clock(), duration_ms=duration_ms,
                           failed_cell=result.failed_cell, error=result.error,
                           output_notebook=result.output_notebook, output_html=result.output_html)
            sp.set(duration_ms=duration_ms, error=result.error,
                   payload={**payload, "status": status, "failed_cell": result.failed_cell,
                            "output_html": result.output_html})
        return history.get(self.store, run.id)

    def cancel_all(self) -> int:
        """Cancel the Dask tasks of runs in flight (the server is stopping); each is recorded as failed."""
        with self._lock:
            futures = list(self._futures.values())
        for future in futures:
            future.cancel()
        return len(futures)
