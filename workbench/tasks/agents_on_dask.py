"""The Director on Dask: a task is planned, its subtasks fan out as Dask tasks, the answer is aggregated.

    task (Dask task, no LLM slot) ── plan_step (LLM slot if the model is local): route; plan if multi
                                  ├─ run_subtask s1 ─┐  independent subtasks run in parallel,
                                  ├─ run_subtask s2 ─┤  on whichever workers have a free slot
                                  └─ run_subtask s3 (after s1, s2; their results as context)
                                  └─ aggregate (here: deterministic, cites [s1] [s2] [s3])

`run_agents` is the "agents" task body (workbench.tasks.bodies): it runs on a worker, inside the
runner's status handling, and fans out from there with `worker_client()` (which secedes this thread,
so a one-thread worker can run subtasks while the Director waits). Model-bound steps ask for the `LLM`
resource only when their model is local, so local generation stays capped cluster-wide while cloud and
function models run in parallel. The rules are those of `workbench.agents.inline` (the reference,
sequential version): dependents run after their inputs with them as context; a failed subtask fails
alone and its dependents are skipped; the task budget and wall-clock limit cover everything.

Dispatch adds little to raw Dask per subtask (benchmarks/tasks_dispatch.py): results are fetched on the
client's event loop as each subtask finishes (`as_completed(with_results=True)`), not by the Director
waiting on futures and then fetching each result; a subtask's worker hands its checkpoint to a thread of
its own and returns, and does not flush its events per subtask; when the subtasks are over the Director
waits, on every worker at once, for the checkpoints and events written so far (`flush_workers`), so the
task's final status still comes after every checkpoint and event of its subtasks. The LLM-slot check asks
the scheduler once per task and model, not once per subtask.

Checkpoints (workbench.tasks.plans): the plan is stored before any subtask runs and each subtask's
result when it finishes, so a task retried after its worker died resumes from its finished subtasks.
With approve_plan the task stops in `awaiting_approval` after planning, until approved or edited.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg

from workbench import telemetry
from workbench.agents import bus
from workbench.agents.director import DirectorSettings, Plan, aggregate, plan, skipped_before_start
from workbench.agents.guards import Budget
from workbench.agents.registry import Registry, default_registry, run_specialist
from workbench.agents.specialist import Subtask, SubtaskResult
from workbench.cluster import ClusterLost
from workbench.config import get_settings
from workbench.errors import AgentTimeout, AwaitingApproval, Cancelled, TaskFailed, WorkbenchError
from workbench.memory import strategy
from workbench.tasks import states
from workbench.tasks.plans import PlanStore

log = logging.getLogger(__name__)
POLL_S = 0.5  # how often the Director looks at cancellation and the deadline while it waits


def run_agents(task: dict[str, Any], ctx) -> dict[str, Any]:
    """The task body: plan (or load the stored plan), run the subtasks on Dask, aggregate."""
    from distributed import worker_client

    from workbench.store import get_store

    store = get_store()
    plans = PlanStore(store)
    registry = default_registry()
    settings = DirectorSettings.from_dict(registry.director_config)
    # Inside the run's budget (the task's budget_usd): the Director's token and wall-clock limits of a task.
    budget = ctx.budget.child(max_tokens=settings.task_max_tokens, timeout_s=settings.task_timeout_s, name="task")
    began = time.perf_counter()
    with telemetry.span("task", agent="director") as span, worker_client(separate_thread=True) as client:
        parent = telemetry.capture()
        record = plans.get(task["id"])
        if record.plan is None:
            planned = _result(_submit(client, plan_step, (task, parent, budget.remaining()),
                                      model=_model_for(task, None, registry), key=task["id"]), ctx)
            ctx.service.update(task["id"], **planned["understanding"])
            budget.charge(tokens=planned["plan"]["tokens_in"] + planned["plan"]["tokens_out"],
                          usd=planned["plan"]["cost_usd"])
            plans.propose(task["id"], planned["plan"], approved=not record.approve_plan)
            record = plans.get(task["id"])
        if record.plan_state == "proposed":
            span.set(payload={"awaiting_approval": True, "plan_version": record.plan_version})
            raise AwaitingApproval(f"The plan (version {record.plan_version}) waits for approval: "
                                   f"`workbench tasks approve {task['id']}` or POST /api/v1/tasks/{task['id']}/approve.")
        the_plan = Plan.from_dict(record.plan)
        resumed = {sid: SubtaskResult.from_dict(r) for sid, r in plans.done(task["id"], record.plan_version).items()}
        results = Scheduler(client, the_plan, task, parent, budget, record.plan_version, registry, ctx, plans,
                            resumed).run()
        answer = aggregate(task["prompt"], the_plan, results)
        _remember_plan(task, the_plan, answer.ok)
        tokens_in = the_plan.tokens_in + sum(r.tokens_in for r in results.values())
        tokens_out = the_plan.tokens_out + sum(r.tokens_out for r in results.values())
        cost = the_plan.cost_usd + sum(r.cost_usd for r in results.values())
        span.set(error=None if answer.ok else f"failed {answer.failed}, skipped {answer.skipped}",
                 payload={"subtasks": len(the_plan.subtasks), "resumed": sorted(resumed)})
    result = {"answer": answer.text, "ok": answer.ok, "failed": answer.failed, "skipped": answer.skipped,
            "citations": answer.citations, "plan": the_plan.as_dict(), "plan_version": record.plan_version,
            "subtasks": {sid: r.as_dict() for sid, r in results.items()}, "resumed": sorted(resumed),
            "tokens_in": tokens_in, "tokens_out": tokens_out, "tokens": tokens_in + tokens_out, "cost_usd": cost,
            "duration_ms": (time.perf_counter() - began) * 1000, "mode": "agents",
            "approve_plan": record.approve_plan}
    if not any(r.ok for r in results.values()):  # a partial answer is an answer; nothing at all is a failure
        errors = "; ".join(f"{sid}: {r.error}" for sid, r in results.items())
        raise TaskFailed(f"No subtask finished ({errors[:1500]}).", result)
    return result


def _remember_plan(task: dict[str, Any], the_plan: Plan, ok: bool) -> None:
    """A plan the model made is remembered for the Director: as a plan when the task finished ok, else as a
    failure note (fast-path and fallback plans teach nothing a later plan could reuse)."""
    from workbench import memory

    if the_plan.source not in ("model", "reasked") or not memory.enabled(task.get("memory")):
        return
    memory.remember_plan(task["prompt"], the_plan.as_dict(), owner=_owner(task), ok=ok, task_id=task["id"])


def _owner(task: dict[str, Any]) -> str:
    """Whose memory the task uses: the owner stored with it (a task created before owners were kept: the
    setting's)."""
    return task.get("memory_owner") or get_settings().memory_owner


def memory_options(task: dict[str, Any]) -> dict[str, Any]:
    """The task's memory choice and owner as specialist options (workbench.code.specialist reads them); no
    choice leaves agents.yaml's (or the setting's) in force."""
    chosen = {} if task.get("memory") is None else {"memory": task["memory"]}
    return {**chosen, "memory_owner": _owner(task)}


class Scheduler:
    """Runs the plan's subtasks as Dask tasks as soon as their inputs are ready; collects every result."""

    def __init__(self, client, the_plan: Plan, task: dict, parent: telemetry.Context, budget: Budget, version: int,
                 registry: Registry, ctx, plans: PlanStore, resumed: dict[str, SubtaskResult]):
        self.client, self.plan, self.task, self.parent, self.budget = client, the_plan, task, parent, budget
        self.version, self.registry, self.ctx, self.plans = version, registry, ctx, plans
        self.results: dict[str, SubtaskResult] = dict(resumed)
        self.pending = [s.id for s in the_plan.subtasks if s.id not in resumed]
        self.running: dict[Any, str] = {}  # future -> subtask id
        self.tries: dict[str, int] = {}
        self.resources: dict[str, dict[str, int] | None] = {}  # model -> what its subtasks ask for
        self.finished = None  # as_completed(with_results=True) over the subtasks' futures, made by run()

    def run(self) -> dict[str, SubtaskResult]:
        from distributed import as_completed

        # Each result is fetched on the event loop the moment its subtask finishes, and handed over here.
        self.finished = as_completed(loop=self.client.loop, with_results=True, raise_errors=False)
        try:
            while self.pending or self.running:
                self._dispatch_ready()
                if not self.running:
                    continue  # everything left was skipped just now (or is waiting on a skipped input)
                for future, outcome in _next_finished(self.finished, POLL_S):
                    if future in self.running:  # not one cancelled meanwhile
                        self._collect(future, outcome)
                self.ctx.check_cancelled()  # RunContext looks at the row at most every CANCEL_CHECK_S
                if self.budget.seconds_left() is not None and self.budget.seconds_left() <= 0:
                    self._time_out()
        finally:
            for future in self.running:  # cancelled or crashed: do not leave subtasks running
                future.cancel()
            flush_workers(self.client)  # the subtasks' events are durable before the task's final status
        return self.results

    def _dispatch_ready(self) -> None:
        for sid in list(self.pending):
            sub = self.plan.get(sid)
            if any(d not in self.results for d in sub.depends_on):
                continue
            self.pending.remove(sid)
            skipped = skipped_before_start(sub, self.results, self.budget)
            if skipped is not None:
                self._finish(skipped)
            else:
                self._start(sub)

    def _start(self, sub: Subtask) -> None:
        bus.send("request", sender="director", to=sub.specialist, text=sub.instructions, subtask_id=sub.id,
                 depends_on=sub.depends_on)
        context = {d: self.results[d].as_context() for d in sub.depends_on}
        model, chosen = self._model(sub)
        if model not in self.resources:  # one look at the workers' slots per model, not per subtask
            self.resources[model] = _resources(self.client, model)
        key = f"run_subtask-{self.task['id']}-{sub.id}-{self.tries.get(sub.id, 0)}"
        future = self.client.submit(run_subtask, self.task["id"], self.parent, sub.as_dict(), context,
                                    self.budget.remaining(), chosen, self.version,
                                    memory_options(self.task), key=key, resources=self.resources[model], pure=False)
        self.running[future] = sub.id
        self.finished.add(future)

    def _model(self, sub: Subtask) -> tuple[str, str | None]:
        """(the model the subtask runs on, the model to hand it: None lets it take the task's or its
        specialist's). With WORKBENCH_STRATEGY_MODELS set, a subtask that nothing else gives a model gets the
        strategy's choice for its specialist (seeded by task and subtask: a retry chooses alike)."""
        model = _model_for(self.task, sub.specialist, self.registry)
        settings = get_settings()
        candidates = [m.strip() for m in settings.strategy_models.split(",") if m.strip()]
        if (not candidates or not settings.strategy or self.task.get("model")
                or self.registry.get(sub.specialist).model):
            return model, self.task.get("model")
        try:
            chosen = strategy.choose_model(self.plans.store, specialist=sub.specialist, default=model,
                                           candidates=candidates, rng=random.Random(f"{self.task['id']}:{sub.id}"),
                                           explore=settings.strategy_explore).value
        except Exception as exc:  # noqa: BLE001 - the statistics are an aid: unreadable, the default runs
            log.warning("strategy statistics unreadable, subtask %s keeps %s: %s", sub.id, model, exc)
            return model, self.task.get("model")
        return chosen, chosen

    def _collect(self, future, outcome) -> None:
        """One finished subtask: `outcome` is its result dict, or (type, exception, traceback) if it raised."""
        from distributed.scheduler import KilledWorker

        sid = self.running.pop(future)
        sub = self.plan.get(sid)
        if future.status == "cancelled":  # by the cluster (the Director drops its own first): not the subtask's failure
            raise ClusterLost(self.task["id"], f"Dask cancelled subtask {sid} (the scheduler was lost)")
        try:
            if future.status == "error":
                raise outcome[1]
            if future.status != "finished":
                raise WorkbenchError(f"its Dask future ended {future.status}")
            result = SubtaskResult.from_dict(outcome)
        except KilledWorker as exc:
            tries = self.tries[sid] = self.tries.get(sid, 0) + 1
            if states.runs_again(tries):  # the same rule as a task's
                telemetry.emit("agent_step", agent="director", payload={"retry": sid, "reason": str(exc)[:300]})
                self._start(sub)
                return
            result = SubtaskResult.failed(sub, f"its worker died {tries} time(s): {exc}")
        except Exception as exc:  # noqa: BLE001 - run_subtask itself broke (e.g. the store was down)
            result = SubtaskResult.failed(sub, f"{type(exc).__name__}: {exc}")
        else:
            self.budget.charge(tokens=result.tokens_in + result.tokens_out, usd=result.cost_usd)
            self.results[sid] = result
            return  # the worker saved its checkpoint and sent its result message
        self._finish(result)

    def _finish(self, result: SubtaskResult) -> None:
        """Record a result the Director decided (skipped, or failed without a worker to record it)."""
        self.results[result.subtask_id] = result
        telemetry.emit("subtask", agent=result.specialist, error=result.error,
                       payload={**result.as_dict(), "decided_by": "director"})
        self.plans.save_subtask(self.task["id"], self.version, result.as_dict(), worker="director")

    def _time_out(self) -> None:
        error = AgentTimeout(f"The task ran past its wall-clock limit ({self.budget.effective_deadline() - self.budget.started:.0f} s); "
                             f"raise director.task_timeout_s in agents.yaml or split the task.")
        for future, sid in list(self.running.items()):
            future.cancel()
            del self.running[future]
            self._finish(SubtaskResult.failed(self.plan.get(sid), f"AgentTimeout: {error}", stop_reason="timeout"))
        for sid in list(self.pending):
            self.pending.remove(sid)
            self._finish(SubtaskResult.skipped(self.plan.get(sid), f"skipped: {error}"))


# --- what runs on the workers ---------------------------------------------------------------------


def plan_step(task: dict[str, Any], parent: telemetry.Context, budget: Budget) -> dict[str, Any]:
    """Route the task, and plan it unless one specialist takes it as it is (one LLM-slot task: both are
    model calls). The route is also the task's understanding (kind, language, complexity, summary)."""
    from workbench.agents.director import route_task
    from workbench.tasks.understanding import understanding_of

    registry = default_registry()
    with _in_trace(parent):
        # The task's own model routes and plans it when it names one; else agents.yaml decides
        # (director.router_model, director.model).
        routed = route_task(task["prompt"], registry=registry, model=task.get("model"), budget=budget)
        the_plan = plan(task["prompt"], registry=registry, model=task.get("model"), budget=budget,
                        task_id=task["id"], route=routed, use_memory=task.get("memory"), memory_owner=_owner(task))
    return {"understanding": understanding_of(task["prompt"], routed, the_plan), "plan": the_plan.as_dict()}


def run_subtask(task_id: str, parent: telemetry.Context, subtask: dict[str, Any], context: dict[str, str],
                budget: Budget, model: str | None, version: int,
                options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One subtask on its specialist; posts its result to the Director and queues its checkpoint.
    `options`: the task's own specialist options (its memory choice and owner)."""
    worker = _worker_name()
    with _in_trace(parent, flush=False):  # the Director flushes every worker once, at the end (flush_workers)
        saved = _saved_result(task_id, version, subtask["id"])
        if saved is not None:
            return saved
        result = run_specialist(subtask, context, model=model, budget=budget, task_id=task_id, options=options)
        bus.send("result", sender=result.specialist, to="director", text=result.output or result.error or "",
                 subtask_id=result.subtask_id, status=result.status, worker=worker)
        done = result.as_dict()
        _checkpoint_soon(task_id, version, done, worker)
    return done


def _saved_result(task_id: str, version: int, subtask_id: str) -> dict[str, Any] | None:
    """The checkpoint of this subtask if an earlier run of it finished: Dask runs a subtask again when the
    worker holding its result dies before the Director fetched it, or a resumed Director asks for one whose
    first run was still finishing. The stored result is the answer: no second model call, no second event."""
    from workbench.store import get_store

    try:
        saved = PlanStore(get_store()).done(task_id, version, subtask_id).get(subtask_id)
    except psycopg.Error as exc:  # the store away: no checkpoint can be read, so the subtask runs
        log.warning("checkpoint of subtask %s of task %s unreadable (%s); running it", subtask_id, task_id, exc)
        return None
    if saved is not None:
        telemetry.emit("agent_step", agent=saved["specialist"],
                       payload={"reused_checkpoint": subtask_id})
    return saved


_CHECKPOINTS: dict[str, Any] = {"thread": None, "pending": set()}
_CHECKPOINTS_LOCK = threading.Lock()


def _checkpoint_soon(task_id: str, version: int, result: dict[str, Any], worker: str) -> None:
    """Save a finished subtask's checkpoint on this process's checkpoint thread (in order, one at a time)."""
    with _CHECKPOINTS_LOCK:
        if _CHECKPOINTS["thread"] is None:
            _CHECKPOINTS["thread"] = concurrent.futures.ThreadPoolExecutor(1, "workbench-checkpoint")
        saving = _CHECKPOINTS["thread"].submit(telemetry.wrap(_checkpoint), task_id, version, result, worker)
        _CHECKPOINTS["pending"].add(saving)
    saving.add_done_callback(_CHECKPOINTS["pending"].discard)


def _checkpoint(task_id: str, version: int, result: dict[str, Any], worker: str) -> None:
    from workbench.store import get_store

    try:
        PlanStore(get_store()).save_subtask(task_id, version, result, worker=worker)
    except Exception as exc:  # noqa: BLE001 - the Director has the result; only a resume would need it
        log.warning("checkpoint of subtask %s of task %s not saved: %s", result["subtask_id"], task_id, exc)
        telemetry.emit("agent_step", agent=result["specialist"],
                       error=f"checkpoint of {result['subtask_id']} not saved ({type(exc).__name__}: {exc}); "
                             f"a resumed task would run it again")


def wait_for_checkpoints(timeout: float = 30.0) -> None:
    """Block until every checkpoint this process queued so far is saved (or reported as not saved)."""
    with _CHECKPOINTS_LOCK:
        pending = list(_CHECKPOINTS["pending"])
    concurrent.futures.wait(pending, timeout=timeout)


@contextlib.contextmanager
def _in_trace(parent: telemetry.Context, *, flush: bool = True) -> Iterator[None]:
    """Enter the Director's span on this worker, so the work done here nests under it; flush on exit
    unless the caller makes the events durable later (the Director's `flush_workers`)."""
    from workbench.store import get_store

    store = get_store()  # open it BEFORE anything is emitted: it is this process's telemetry sink
    try:
        with telemetry.use(parent):
            yield
    finally:
        if flush:
            store.flush()


def _result(future, ctx) -> Any:
    """The step's result; while it runs the Director looks at cancellation every POLL_S, and drops the step
    when the task is cancelled (the step itself stops at its next model call: its budget's watch)."""
    from distributed import wait

    try:
        while not future.done():
            ctx.check_cancelled()
            with contextlib.suppress(TimeoutError):
                wait(future, timeout=POLL_S)
        return future.result()
    except Cancelled:
        future.cancel()
        raise
    except concurrent.futures.CancelledError as exc:  # not by us: the cluster dropped it
        raise ClusterLost(ctx.task["id"], f"Dask cancelled its step {future.key} (the scheduler was lost)") from exc


def _next_finished(finished, timeout: float) -> list[tuple[Any, Any]]:
    """(future, result) pairs of the subtasks finished so far, waiting up to `timeout` s for the first."""
    with finished.thread_condition:  # as_completed notifies it after it queues a result
        if not finished.has_ready():
            finished.thread_condition.wait(timeout)
    return finished.next_batch(block=False)


def flush_workers(client) -> None:
    """Make every checkpoint and event the workers have written so far durable (all workers at once)."""
    try:
        client.run(_flush_events, on_error="ignore")  # a worker that died meanwhile has nothing left to flush
    except Exception as exc:  # noqa: BLE001 - never hide why the task ended; the writers flush by themselves
        telemetry.emit("agent_step", agent="director", error=f"flushing the workers' events failed: {exc}")


def _flush_events() -> None:
    from workbench.store import current_store

    wait_for_checkpoints()  # first: a checkpoint that failed leaves an event to flush
    store = current_store()  # a worker that never opened the store has no events to flush
    if store is not None:
        store.flush()


def _resources(client, model: str) -> dict[str, int] | None:
    """What a step on `model` asks Dask for: an LLM slot when the model is local (refused if none exists)."""
    from workbench import cluster

    return cluster.require_llm_slot(client) if _is_local(model) else None


def _submit(client, fn, args: tuple, *, model: str, key: str):
    """Submit to the cluster, asking for an LLM slot when the step's model is local."""
    return client.submit(fn, *args, key=f"{fn.__name__}-{key}", resources=_resources(client, model), pure=False)


def _model_for(task: dict[str, Any], specialist: str | None, registry: Registry) -> str:
    """The model name a step will use: the task's, else the specialist's (or Director's), else the default."""
    if task.get("model"):
        return task["model"]
    configured = registry.get(specialist).model if specialist else registry.director_config.get("model")
    return configured or get_settings().model


def _is_local(model: str | None) -> bool:
    from workbench.providers import resolve

    return resolve(model).startswith("local:")


def _worker_name() -> str:
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except ValueError:
        return "in-process"
