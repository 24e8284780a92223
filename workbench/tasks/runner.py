"""Tasks on Dask: submit, watch, retry when a worker dies, cancel, recover after a restart.

`TaskRunner` lives in the process that owns the Dask client (the server, or a CLI that started its
own services). `execute()` is what runs on a worker: it owns the task's status from `processing` until
a final state, writes events through the worker's batched writer, and commits the final status in the
writer's transaction that commits every event before it, so a finished task never has events in flight.

What a task costs in Postgres, the commits being what counts (each waits for the disk):
- submit: the `queued` change (one statement) is written, then Dask is given the task, then the
  transaction commits: the commit's wait overlaps the scheduler's dispatch. The row stays locked until
  then, and the worker's first read waits for it (a shared advisory lock: no write, nothing to commit);
  `create()` does the same with the new task's insert, so create + submit are one commit;
- the worker: one read (is it still queued?), the body, then one commit holding `processing`, the
  body's events and the final status. A body that runs longer than PROCESSING_COMMIT_S gets its
  `processing` committed on its own after that long (with its real start time), so a long task reads
  processing while it runs.
- a failed final commit: retried for FINAL_COMMIT_TIMEOUT_S, the outcome saved locally first
  (tasks.outcomes), so a rerun of the task records that outcome instead of running the work again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import telemetry
from workbench.agents.guards import Budget
from workbench.cluster import ClusterLost, NothingToReconnect, closed_for_good
from workbench.errors import AwaitingApproval, Cancelled, StoreError, TaskFailed, WorkbenchError
from workbench.tasks import bodies, outcomes, states
from workbench.tasks.cancellation import CancelWatch
from workbench.tasks.records import NewTask
from workbench.tasks.service import TaskService, check_model

log = logging.getLogger(__name__)
CANCEL_CHECK_S = 0.5
PROCESSING_COMMIT_S = 0.05  # `processing` waits this long to share the final status's commit
FINAL_COMMIT_TIMEOUT_S = 30.0
_GONE = ("cancelled", "lost")  # future states in which Dask will not run it
WATCH_EVERY_S = 5.0
LOST_AFTER_S = 10.0  # a task queued this long whose future Dask dropped is submitted again


@dataclass
class RunOptions:
    body: str = "single_call"
    classify: bool = True
    max_tokens: int = 512
    model: str | None = None
    seconds: float = 0.0  # for the "sleep" body
    events: int = 0  # for the "emit" body
    params: dict = field(default_factory=dict)  # a body's own settings (experiment_case: the case and its run)


@dataclass
class RunContext:
    """Handed to a task body: its model, limits, budget and a cheap cancellation check."""

    task: dict
    service: TaskService
    options: RunOptions
    _checked: float = field(default=0.0)
    # The task's budget_usd, over every model call of the run: checked before each call, charged after.
    budget: Budget = field(init=False)
    # Writes the body wants committed with the task's final status, in its transaction (an experiment
    # case's result row): the row and the status are then recorded together or not at all.
    on_commit: list = field(default_factory=list)

    def __post_init__(self) -> None:
        self.budget = Budget.create(max_usd=self.task.get("budget_usd"), name="task")
        self.budget.watch = CancelWatch(self.task["id"])  # every model step of the run, on any worker, stops there

    def model(self):
        import workbench

        return workbench.get_model(self.options.model or self.task.get("model"))

    @property
    def max_tokens(self) -> int:
        return self.options.max_tokens

    def check_cancelled(self) -> None:
        now = time.monotonic()
        if now - self._checked < CANCEL_CHECK_S:
            return
        self._checked = now
        self.budget.watch()  # the same read as before each model step (store unreachable: not cancelled)


def execute(task_id: str, options: RunOptions) -> str:
    """Runs on a Dask worker. Returns the final status (the task row holds the result)."""
    from workbench.store import get_store

    store = get_store()  # opened first: it is this process's telemetry sink
    service = TaskService(store)
    started, where = time.time(), _where()
    with service.transaction() as conn:  # waits for the submit that queued it to commit
        task = service.get_on(conn, task_id, wait_for_writers=True)
    if task["status"] != "queued":
        if task["status"] in states.TERMINAL:  # an earlier try's commit happened after all: its saved copy is spent
            outcomes.discard(store.home, task_id)
        return task["status"]  # cancelled while queued, finished already (or a submit that never committed)
    saved = outcomes.load(store.home, task_id)
    if saved is not None:  # an earlier run did the work but could not record its end: record it, do not redo it
        log.info("task %s: recording the outcome an earlier run saved (%s)", task_id, saved.final)
        _finish(store, service, task_id, saved.final, saved.reason, saved.fields, where, started)
        _export_trace(task_id, store, saved.final)
        return saved.final
    task["status"] = "processing"
    store.writer.transact(lambda conn: _processing(service, conn, task_id, where, started),
                          delay_s=PROCESSING_COMMIT_S)
    ctx = RunContext(task, service, options)
    final, fields, reason = "completed", {}, ""
    with telemetry.task(task_id):
        try:
            if options.classify:
                from workbench.tasks.understanding import classify

                with telemetry.span("agent_step", agent="understanding") as step:
                    understanding = classify(task["prompt"], ctx.model(), ctx.budget)
                    step.set(payload=understanding)
                service.update(task_id, **understanding)
                task.update(understanding)
            with telemetry.span("agent_step", agent=options.body) as step:
                fields["result"] = bodies.BODIES[options.body](task, ctx)
                step.set(payload={"result": fields["result"]})
        except Cancelled:
            final = "cancelled"
        except AwaitingApproval as exc:
            final, reason = "awaiting_approval", str(exc)
        except TaskFailed as exc:
            final, fields["error"], fields["result"] = "failed", str(exc), exc.result
        except ClusterLost:
            raise  # no end recorded: the runner (or, with the scheduler gone, its watchdog) runs it again
        except concurrent.futures.CancelledError as exc:  # a body's own Dask future dropped by the cluster
            raise ClusterLost(task_id, "Dask cancelled a step of it (the scheduler was lost)") from exc
        except WorkbenchError as exc:
            final, fields["error"] = "failed", str(exc)
        except Exception as exc:  # a bug in a body fails its task, never the worker
            final, fields["error"] = "failed", f"{type(exc).__name__}: {exc}"
    if final == "failed" and (store.closed or _worker_stopping()):  # e.g. its scheduler went away: not the task's failure
        raise ClusterLost(task_id, f"its worker stopped under it ({fields.get('error', '')[:200]})")
    reason = fields.get("error") or reason
    _finish(store, service, task_id, final, reason, fields, where, started, ctx.on_commit)
    _export_trace(task_id, store, final)
    return final


def _processing(service: TaskService, conn, task_id: str, where: str, started: float) -> dict | None:
    """queued -> processing at `started`; None if it is not queued (cancelled, or processing already)."""
    return service.transition_on(conn, task_id, "processing", reason=where, sources=("queued",), started=started)


def _finish(store, service: TaskService, task_id: str, final: str, reason: str, fields: dict, where: str,
            started: float, on_commit: list | None = None) -> None:
    """The final status, committed with the task's events (and its `processing`, if still to write).

    Idempotent, and retried for FINAL_COMMIT_TIMEOUT_S: the work is done, so a Postgres blip here must not
    make Dask run it again. Before the first retry the outcome is saved on local disk (tasks.outcomes): if
    Postgres stays away longer, this raises StoreError and the rerun (Dask's retry, or recover() after a
    restart) records the saved outcome instead of calling the models again."""
    deadline = time.monotonic() + FINAL_COMMIT_TIMEOUT_S
    saved: Path | None = None
    pause = 0.05
    while True:
        try:
            _commit_final(store, service, task_id, final, reason, fields, where, started, deadline, on_commit or [])
            break
        except Exception as exc:  # noqa: BLE001 - Postgres (or the pool) failed: the outcome is kept, then retried
            if saved is None:
                saved = outcomes.save(store.home, task_id, outcomes.Outcome(final, reason, fields))
            if time.monotonic() + pause > deadline:
                raise StoreError(
                    f"Task {task_id} finished ({final}) but its final status could not be recorded for "
                    f"{FINAL_COMMIT_TIMEOUT_S:g} s ({type(exc).__name__}: {exc}). Its outcome is saved in {saved}: "
                    f"the retry, or the next start's recovery, records it without running the task again. "
                    f"Check `workbench db status`."
                ) from exc
            log.info("task %s: recording the final status failed (%s); trying again", task_id, exc)
            time.sleep(pause)
            pause = min(pause * 2, 2.0)
    if saved is not None or outcomes.path_for(store.home, task_id).exists():
        outcomes.discard(store.home, task_id)


def _commit_final(store, service: TaskService, task_id: str, final: str, reason: str, fields: dict, where: str,
                  started: float, deadline: float, on_commit: list) -> None:
    """One try at the final status; already recorded (or cancelled meanwhile) counts as done. The body's
    `on_commit` writes run in the same transaction when the status is written."""
    def commit(conn):
        _processing(service, conn, task_id, where, started)
        row = service.transition_on(conn, task_id, final, reason=reason, sources=("processing",), **fields)
        if row is not None:
            for write in on_commit:
                write(conn)
        return row

    try:
        store.writer.transact(commit).result(max(0.1, deadline - time.monotonic()))
        return  # None: refused (cancelled meanwhile: cancelled wins; or recorded by an earlier try)
    except Exception as exc:  # noqa: BLE001 - the writer's transaction failed; its events are still written
        log.info("task %s: final status with the events failed (%s); writing them one after the other", task_id, exc)
    store.flush(max(0.1, deadline - time.monotonic()))  # the task's events are durable before it is seen finished
    with service.transaction() as conn:
        _processing(service, conn, task_id, where, started)
    try:
        with service.transaction() as conn:
            row = service.transition_on(conn, task_id, final, reason=reason, sources=("processing",), **fields)
            if row is None:
                raise states.IllegalTransition(task_id, "not processing", final)
            for write in on_commit:
                write(conn)
    except states.IllegalTransition:
        pass  # cancelled meanwhile (or an earlier try's commit had in fact happened)


def _export_trace(task_id: str, store, final: str) -> None:
    """With WORKBENCH_OTLP_ENDPOINT set, the finished task's spans go to the OpenTelemetry collector."""
    from workbench.config import get_settings

    if not get_settings().otlp_endpoint or final == "awaiting_approval":
        return
    try:
        from workbench.otel import export_task

        export_task(task_id, store=store)
    except Exception as exc:  # noqa: BLE001 - a collector that is down must not fail a finished task
        log.warning("OTLP export of task %s failed: %s", task_id, exc)


def options_for(task: dict) -> RunOptions:
    """How a task runs by default: its mode picks the body (agents: Director + specialists)."""
    if task.get("mode", "agents") == "agents":
        return RunOptions(body="agents", classify=False)  # the plan step classifies, on an LLM slot
    return RunOptions()


def _ran_again(future) -> bool:
    """Whether Dask itself ran this submission a second time after the worker running it was lost.

    A LocalCluster's scheduler is started with allowed-failures 0, so a lost worker ends the future in
    KilledWorker and `_done` retries it. An external scheduler keeps its own setting (Dask's default is 3)
    and reschedules the same key on another worker: that run finds the task `processing` (the lost run's
    status, each submission having a key of its own) and returns without touching it. Left there, the task
    would read processing until the next restart; `_done` retries it instead, counted like a KilledWorker."""
    try:
        return future.status == "finished" and future.result(timeout=5) == "processing"
    except Exception:  # noqa: BLE001 - a result that cannot be fetched is not a finished rerun
        return False


def _worker_stopping() -> bool:
    """Whether this Dask worker is closing (a worker ends with its scheduler): its connections fail then,
    and a body that fails meanwhile failed because of that."""
    try:
        from distributed import get_worker

        return get_worker().status.name not in ("running", "paused")
    except ValueError:  # not on a worker
        return False


def _where() -> str:
    try:
        from distributed import get_worker

        return f"running on {get_worker().name}"
    except ValueError:
        return "running in-process"


class TaskRunner:
    """Submits tasks to Dask and watches their futures (worker deaths, retries, cancels)."""

    def __init__(self, client, service: TaskService, options: RunOptions | None = None,
                 reconnect: Callable[[], Any] | None = None):
        """`reconnect`: how to get a new client once this one is closed for good (its scheduler stayed away
        past the client's own reconnect window); None: the runner stops watching then."""
        self.client = client
        self.reconnect = reconnect
        self.service = service
        self.options = options  # None: by the task's mode (agents or single)
        self.futures: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._watchdog: threading.Thread | None = None
        self._submissions = itertools.count()
        self._gone: dict[str, float] = {}  # processing tasks whose future Dask dropped: since when (monotonic)

    def submit(self, task_id: str, options: RunOptions | None = None) -> dict:
        """Queue the task on Dask (a pending one becomes queued); returns its row."""
        opts = options or self.options or options_for(self.service.get(task_id))
        resources = self._resources(opts)  # asks the scheduler: before any lock is held
        with self._committing() as submit, self.service.transaction() as conn:
            task = self.service.transition_on(conn, task_id, "queued", reason="submitted to Dask", sources=("pending",))
            submit(task or self.service.get_on(conn, task_id), opts, resources)  # not pending: as it is
        return task or self.service.get(task_id)

    def create(self, new: NewTask, options: RunOptions | None = None) -> dict:
        """`TaskService.create` and `submit` in one transaction (pending -> queued, both events): one commit,
        whose wait overlaps Dask's dispatch. Returns the row as queued.

        All or nothing: if Dask refuses the task or the commit fails, the transaction rolls back (no row,
        no event) and the future is cancelled, so a failed create leaves nothing behind to clean up."""
        check_model(new)
        opts = options or self.options or options_for({"mode": new.mode})
        resources = self._resources(opts)
        with self._committing() as submit, self.service.transaction() as conn:
            created = self.service.create_on(conn, new)
            task = self.service.transition_on(conn, created()["id"], "queued", reason="submitted to Dask")
            submit(task, opts, resources)
        return task

    def create_many(self, items: list[tuple[NewTask, RunOptions]]) -> list[dict]:
        """`create` for several tasks in one transaction and one commit (an experiment's cases): all are
        queued, or none is. Each model is checked once."""
        for model in {new.model for new, _ in items}:
            check_model(items[next(i for i, (n, _) in enumerate(items) if n.model == model)][0])
        resources = {id(opts): self._resources(opts) for _, opts in items}
        tasks = []
        with self._committing() as submit, self.service.transaction() as conn:
            for new, opts in items:
                created = self.service.create_on(conn, new)
                task = self.service.transition_on(conn, created()["id"], "queued", reason="submitted to Dask")
                submit(task, opts, resources[id(opts)])
                tasks.append(task)
        return tasks

    @contextlib.contextmanager
    def _committing(self):
        """`_submit` inside the transaction that queues the task (so the commit's wait overlaps Dask's
        dispatch); if that transaction then fails, the future is cancelled and forgotten."""
        submitted = []
        try:
            yield lambda task, *args: submitted.append((task["id"], self._submit(task, *args)))
        except BaseException:
            for task_id, future in submitted:
                with self._lock:
                    if self.futures.get(task_id, (None,))[0] is future:
                        del self.futures[task_id]
                future.cancel()
            raise

    def _resources(self, opts: RunOptions) -> dict | None:
        from workbench import cluster

        # The agents body asks for LLM slots per step itself (its Director only waits): never hold one here.
        return cluster.require_llm_slot(self._live_client()) if bodies.needs_llm_slot(opts) else None

    def _live_client(self):
        """The client, replaced first if it was closed for good and this runner may reconnect (ClusterError,
        a 503, while the scheduler is still away)."""
        if self.reconnect is not None and closed_for_good(self.client):
            self.client = self.reconnect()
        return self.client

    def _submit(self, task: dict, opts: RunOptions, resources: dict | None):
        """client.submit and the bookkeeping (the worker runs it only if it finds the task queued)."""
        task_id = task["id"]
        # A key of its own per submission: Dask answers a known key with the existing (maybe cancelled) future.
        key = f"task-{task_id}-{task['attempts']}-{next(self._submissions)}"
        future = self._live_client().submit(execute, task_id, opts, key=key, priority=task["priority"], pure=False,
                                    resources=resources)
        with self._lock:
            self.futures[task_id] = (future, opts)
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch, name="task-watchdog", daemon=True)
                self._watchdog.start()
        future.add_done_callback(lambda f, tid=task_id: self._done(tid, f))
        return future

    def _watch(self) -> None:
        # While the client reconnects to a restarted scheduler ("connecting") this waits, and once it is back
        # the futures the old scheduler took with it are found and resubmitted. A client closed for good is
        # replaced through `reconnect` (its futures are all cancelled: the same reconciliation runs them again).
        while True:
            time.sleep(WATCH_EVERY_S)
            before = self.client
            try:
                client = self._live_client()
            except NothingToReconnect as exc:  # closed on purpose: this runner's work is over
                log.debug("task watchdog stops: %s", exc)
                return
            except Exception as exc:  # noqa: BLE001 - still away: try again next round
                log.debug("task watchdog: no scheduler yet (%s)", exc)
                continue
            if closed_for_good(client):  # and no way to reconnect
                return
            if client is not before:
                log.warning("task watchdog: connected to the Dask scheduler again with a new client")
            if self.client.status != "running":
                continue
            try:
                self.reconcile()
            except Exception as exc:  # noqa: BLE001 - Postgres or the scheduler away: try again next round
                log.debug("task watchdog: %s", exc)

    def reconcile(self, grace_s: float = LOST_AFTER_S) -> list[str]:
        """Tasks this runner submitted whose future Dask cancelled or lost while the row still says
        `queued` (nobody cancelled the task) are submitted again, and those it still says `processing` are
        retried (a lost scheduler took their run with it), so a task never waits forever."""
        import datetime as dt

        with self._lock:
            gone = {tid: entry for tid, entry in self.futures.items() if entry[0].status in _GONE}
        now, lost = dt.datetime.now(dt.timezone.utc), []
        for task_id, (future, opts) in gone.items():
            task = self.service.get(task_id)
            if task["status"] == "queued" and (now - dt.datetime.fromisoformat(task["updated_at"])).total_seconds() < grace_s:
                continue
            # A processing task whose future is gone was running when the scheduler went away (the client
            # cancels every future when it loses the scheduler). Waited on for grace_s first: a run that
            # is just recording its end (Postgres, not the scheduler) is left to finish.
            since = self._gone.setdefault(task_id, time.monotonic())
            if task["status"] == "processing" and time.monotonic() - since < grace_s:
                continue
            with self._lock:
                if self.futures.get(task_id, (None,))[0] is future:
                    del self.futures[task_id]
            self._gone.pop(task_id, None)
            if task["status"] == "queued":
                log.warning("task %s was queued but Dask dropped its future; submitting it again", task_id)
                self.submit(task_id, opts)
                lost.append(task_id)
            elif task["status"] == "processing":
                log.warning("task %s was processing when Dask lost its future; running it again", task_id)
                self._retry(task_id, f"Dask lost it mid-task ({future.status}: the scheduler connection was lost)",
                            opts)
                lost.append(task_id)
        return lost

    def _done(self, task_id: str, future) -> None:
        if future.status in _GONE:
            return  # the entry stays: the watchdog tells a user's cancel from a dropped submission
        with self._lock:
            entry = self.futures.pop(task_id, None)
        if future.status == "error":
            exc = future.exception()
            reason = f"{type(exc).__name__}: {exc}"
        elif _ran_again(future):
            reason = "its worker was lost mid-task (Dask ran it again, which found it still processing)"
        else:
            return
        self._retry(task_id, reason, entry[1] if entry else None)

    def _retry(self, task_id: str, reason: str, opts: RunOptions | None) -> None:
        """A run of the task ended without recording an end (its worker or its scheduler was lost): queue it
        again while it has runs left (it resumes from its checkpoints), else fail it with the reason."""
        try:
            task = self.service.get(task_id)
            if task["status"] in states.TERMINAL:
                return
            if states.runs_again(task["attempts"] + 1):
                self.service.update(task_id, attempts=task["attempts"] + 1)
                if task["status"] == "processing":
                    self.service.transition(task_id, "queued", reason=f"retrying after {reason}")
                self.submit(task_id, opts)
            else:
                self.service.transition(task_id, "failed", reason=reason,
                                        error=f"worker failed {task['attempts'] + 1} time(s): {reason}")
        except WorkbenchError as err:
            log.warning("could not record the end of task %s: %s", task_id, err)

    def cancel(self, task_id: str, reason: str = "cancelled by user") -> dict:
        task = self.service.transition(task_id, "cancelled", reason=reason)
        with self._lock:
            entry = self.futures.get(task_id)
        if entry is not None:
            entry[0].cancel()  # a queued future never starts; a running one sees the status change
        return task

    def recover(self) -> list[str]:
        """Tasks left pending/queued/processing by a previous run are queued again, not forgotten."""
        recovered = []
        for task in self.service.stale():
            if task["status"] == "processing":
                runs = task["attempts"] + 1
                self.service.update(task["id"], attempts=runs)
                if not states.runs_again(runs):
                    self.service.transition(task["id"], "failed", reason=f"interrupted {runs} times",
                                            error=f"the workbench stopped while this task ran, {runs} times")
                    continue
                self.service.transition(task["id"], "queued", reason="recovered after restart")
            self.submit(task["id"])
            recovered.append(task["id"])
        return recovered

    def wait(self, task_id: str, timeout: float | None = None) -> dict:
        """Block until the task reaches a final state (the row, not the future, is the truth). While this
        runner holds the task's future, waits on it first: the row is final by the time it is done."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.005
        while True:
            with self._lock:
                entry = self.futures.get(task_id)
            if entry is not None and not entry[0].done():
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                # Its outcome (a result, an error, a cancel, or still running after the timeout) does not
                # matter here: the row says what happened.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    entry[0].result(timeout=min(left, 1.0) if left is not None else 1.0)
            task = self.service.get(task_id)
            if task["status"] in states.RESTING:
                return task
            if deadline is not None and time.monotonic() > deadline:
                raise WorkbenchError(f"Task {task_id} is still {task['status']} after {timeout:g} s.")
            if entry is None or entry[0].done():
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
