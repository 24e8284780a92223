"""Fires due pipeline schedules; the served app runs one (workbench/server/schedules.py).

Policy (times are UTC, cron resolution is one minute):

* A schedule first seen at time T (no row in `pipeline_schedules` yet) never runs for due times at or
  before T: a new server does not run every nightly pipeline at boot.
* Missed runs: when the server was down (or busy) across one or more due times, the next tick runs the
  schedule ONCE for the latest due time (trigger `catch_up` if that time is more than LATE_AFTER_S old,
  else `schedule`); the older missed times are not run, only counted in the `pipeline_scheduled` event.
* Never twice at once: a due time is claimed by moving `pipeline_schedules.last_due` forward inside a
  transaction that holds the schedule's row lock, and the run's row is inserted in that same transaction.
  A second server (or a second scheduler) ticking at the same moment waits for the lock, then sees the
  time claimed and does nothing. A due time that arrives while the pipeline's previous run is still
  `running` is skipped (claimed, not run, event `pipeline_skipped`). A `running` row older than
  stale_after_s is from a server that died mid-run: it is marked failed so it cannot block forever.

Time is injectable (`clock`), so tests fire schedules on a test clock without sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from workbench import telemetry
from workbench.pipelines import history, spec
from workbench.pipelines.history import RunStart
from workbench.pipelines.runner import PipelineRunner, utcnow
from workbench.pipelines.spec import Pipeline

log = logging.getLogger(__name__)
TICK_S = 30.0
LATE_AFTER_S = 120.0  # a due time older than this when claimed was missed, not merely reached
STALE_AFTER_S = 6 * 3600.0
MAX_COUNTED_MISSES = 10_000
Launch = Callable[[Pipeline, RunStart], Any]


@dataclass(frozen=True)
class Firing:
    pipeline: str
    due: datetime
    trigger: str  # schedule | catch_up | skipped
    missed: int  # due times that passed unrun before this one
    run: RunStart | None  # None when skipped


class Scheduler:
    def __init__(self, store, runner: PipelineRunner | None, *, clock: Callable[[], datetime] = utcnow,
                 load: Callable[[], tuple[list[Pipeline], list[spec.PipelineError]]] = spec.load_all,
                 launch: Launch | None = None, tick_s: float = TICK_S, stale_after_s: float = STALE_AFTER_S,
                 max_parallel: int = 2):
        self.store, self.runner, self.clock, self.load = store, runner, clock, load
        self.tick_s, self.stale_after_s = tick_s, stale_after_s
        self._pool = ThreadPoolExecutor(max_parallel, thread_name_prefix="pipeline-run")
        self.launch: Launch = launch or self._run_in_pool
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reported: set[str] = set()

    # --- one tick --------------------------------------------------------------------------------

    def tick(self) -> list[Firing]:
        """Claim and launch every schedule due now; returns what fired (or was skipped)."""
        now = self.clock()
        pipelines, errors = self.load()
        for error in errors:  # once per message, not every tick
            if str(error) not in self._reported:
                self._reported.add(str(error))
                log.error("pipeline not scheduled: %s", error)
        fired = []
        for pipeline in pipelines:
            if not (pipeline.spec.schedule and pipeline.spec.enabled):
                continue
            firing = self.claim(pipeline, now)
            if firing is None:
                continue
            fired.append(firing)
            telemetry.emit("pipeline_skipped" if firing.run is None else "pipeline_scheduled", agent="pipelines",
                           payload={"pipeline": pipeline.name, "due": firing.due.isoformat(),
                                    "trigger": firing.trigger, "missed": firing.missed,
                                    "run_id": firing.run.id if firing.run else None})
            if firing.run is not None:
                self.launch(pipeline, firing.run)
        return fired

    def claim(self, pipeline: Pipeline, now: datetime) -> Firing | None:
        """The due time to run now, claimed in Postgres (None: nothing due, or someone claimed it)."""
        due = pipeline.last_due(now)
        with self.store.connection() as conn:
            # The upsert takes the schedule's row lock until commit: concurrent claimers queue here and then
            # read the committed last_due. A changed cron starts afresh (its old due times do not count).
            since, last_due = conn.execute(
                "INSERT INTO pipeline_schedules AS s (pipeline, cron, since) VALUES (%s, %s, %s) "
                "ON CONFLICT (pipeline) DO UPDATE SET cron = EXCLUDED.cron, since = CASE WHEN s.cron = "
                "EXCLUDED.cron THEN s.since ELSE EXCLUDED.since END RETURNING since, last_due",
                (pipeline.name, pipeline.spec.schedule, now)).fetchone()
            floor = max(since, last_due) if last_due is not None else since
            if due is None or due <= floor:
                return None
            missed = _count_between(pipeline, floor, due)
            conn.execute("UPDATE pipeline_schedules SET last_due = %s WHERE pipeline = %s", (due, pipeline.name))
            conn.execute(
                "UPDATE pipeline_runs SET status = 'failed', finished_at = %s, error = %s "
                "WHERE pipeline = %s AND status = 'running' AND started_at < %s",
                (now, "abandoned: still running long after it started (its server probably stopped mid-run)",
                 pipeline.name, now - timedelta(seconds=self.stale_after_s)))
            busy = conn.execute("SELECT count(*) FROM pipeline_runs WHERE pipeline = %s AND status = 'running'",
                                (pipeline.name,)).fetchone()[0]
            if busy:
                return Firing(pipeline.name, due, "skipped", missed, None)
            late = (now - due).total_seconds() > LATE_AFTER_S
            trigger = "catch_up" if late else "schedule"
            if self.runner is not None:
                run = self.runner.prepare(pipeline, trigger=trigger, scheduled_for=due)
            else:  # claim-only scheduler (tests): the row still marks the run as started
                run = _bare_start(pipeline, trigger, due, now)
            history.insert_start(conn, run)
            return Firing(pipeline.name, due, trigger, missed, run)

    # --- the loop --------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="pipeline-scheduler", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop ticking; runs in flight are cancelled and recorded as failed before this returns."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self.runner is not None:
            self.runner.cancel_all()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - a failed tick (Postgres restarting) must not end the loop
                log.exception("pipeline scheduler tick failed; trying again in %.0f s", self.tick_s)
            self._stop.wait(self.tick_s)

    def _run_in_pool(self, pipeline: Pipeline, run: RunStart) -> Any:
        return self._pool.submit(telemetry.wrap(self.runner.execute), pipeline, run)


def _count_between(pipeline: Pipeline, after: datetime, due: datetime) -> int:
    """Due times strictly between `after` and `due` (the ones the policy does not run), up to a cap."""
    from croniter import croniter

    it, n = croniter(pipeline.spec.schedule, after), 0
    while n < MAX_COUNTED_MISSES and it.get_next(datetime) < due:
        n += 1
    return n


def _bare_start(pipeline: Pipeline, trigger: str, due: datetime, now: datetime) -> RunStart:
    import uuid

    return RunStart(id=str(uuid.uuid4()), pipeline=pipeline.name, trigger=trigger,
                    parameters=dict(pipeline.spec.parameters), started_at=now, workdir="", scheduled_for=due)
