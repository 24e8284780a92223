"""Run a dataset in one or more configurations: one experiment per configuration, one task per case.

    run = ExperimentRun(store, runner)          # runner: a TaskRunner on the Dask client
    experiments = run.run("arith", [config_a, config_b], limit=20, progress=callback)

Resuming is automatic: the same dataset version, configuration and limit find the experiment that is still
`running` (a run that crashed or was stopped) and only its unfinished cases run again. Each unfinished row
gets a new `attempt` before its task is submitted, and a task of the earlier run that is still queued or
running is cancelled: whatever it does next, it cannot record that case (see workbench.evals.results).

Progress is read from the result rows (the truth), not from futures, so it is the same whoever finishes a case.

A configuration whose `budget_from` names another of the same run (HumanEval's resampling at the loop's
token budget) runs after it: the runner reads that experiment's tokens per case once its cases are done and
hands each case its budget. One naming an experiment of an earlier run reads that experiment's rows.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workbench.errors import ConfigError
from workbench.evals import datasets, modes
from workbench.evals.config import ExperimentConfig
from workbench.evals.results import CaseResult, finish
from workbench.experiment import records
from workbench.tasks import states
from workbench.tasks.records import NewTask
from workbench.tasks.runner import RunOptions

log = logging.getLogger(__name__)
POLL_S = 0.1
SUBMIT_BATCH = 16  # tasks per commit: the first cases start at once, the rest cost one commit per batch


@dataclass
class Progress:
    done: int
    total: int
    passed: int
    skipped: int  # finished by an earlier run of the same experiment


Callback = Callable[[Progress], None]


class ExperimentRun:
    def __init__(self, store, runner):
        self.store, self.runner, self.service = store, runner, runner.service

    def run(self, dataset: str, configs: list[ExperimentConfig], limit: int | None = None,
            progress: Callback | None = None, on_start: Callable[[list[dict], list[bool]], None] | None = None,
            ) -> list[dict[str, Any]]:
        names = [c.name for c in configs]
        if len(set(names)) != len(names):
            raise ConfigError(f"Two configurations are named alike ({', '.join(names)}); give each a distinct "
                              f"`name:` (or file name).")
        ds = datasets.get(self.store, dataset, limit=limit)
        for config in configs:
            modes.check_fits(config, ds.cases)
        stages = _stages(configs)  # every refusal before anything starts
        earlier = self._budget_sources(ds, configs)
        started = [records.start(self.store, ds, config, limit) for config in configs]
        experiments = [e for e, _ in started]
        if on_start:
            on_start(experiments, [resumed for _, resumed in started])
        claims = [self._claim(e, ds.cases) for e in experiments]
        skipped = sum(len(ds.cases) - len(claim) for claim in claims)
        total = len(ds.cases) * len(configs)
        ids = [e["id"] for e in experiments]
        by_name = {c.name: e["id"] for c, e in zip(configs, experiments)} | earlier
        for stage in stages:
            budgets = {i: self._tokens(by_name[configs[i].budget_from]) for i in stage if configs[i].budget_from}
            todo: list[tuple[dict, ExperimentConfig, Any, str, dict]] = []
            for case in ds.cases:  # case by case, every configuration: the arms advance together
                for i in stage:
                    attempt = claims[i].get(case.id)
                    if attempt is not None:
                        extras = {"budget_tokens": budgets[i].get(case.id)} if i in budgets else {}
                        todo.append((experiments[i], configs[i], case, attempt, extras))
            self._submit(todo)
            self._follow(ids, total, skipped, progress, wait=([ids[i] for i in stage], len(ds.cases) * len(stage)))
        with self.store.pool.connection() as conn:
            conn.execute("UPDATE experiments SET status = 'completed', finished_at = now() WHERE id = ANY(%s::uuid[]) "
                         "AND status = 'running'", (ids,))
        return [records.get(self.store, e["id"]) for e in experiments]

    def _budget_sources(self, ds, configs: list[ExperimentConfig]) -> dict[str, str]:
        """{configuration name: experiment id} for each `budget_from` that names no configuration of this run:
        the newest experiment of that configuration on the same dataset version."""
        names = {c.name for c in configs}
        found: dict[str, str] = {}
        for config in configs:
            wanted = config.budget_from
            if wanted is None or wanted in names or wanted in found:
                continue
            with self.store.pool.connection() as conn:
                row = conn.execute(
                    "SELECT id FROM experiments WHERE config_name = %s AND dataset = %s AND dataset_version = %s "
                    "ORDER BY created_at DESC LIMIT 1", (wanted, ds.name, ds.version)).fetchone()
            if row is None:
                raise ConfigError(f"{config.name}: budget_from {wanted!r} names no configuration of this run and no "
                                  f"experiment on {ds.name} v{ds.version}; run them together (--config of the "
                                  f"{wanted} configuration first, then --config of {config.name}).")
            found[wanted] = str(row[0])
        return found

    def _tokens(self, experiment_id: str) -> dict[str, int]:
        """Tokens in + out per finished case of an experiment (a resampling budget)."""
        with self.store.pool.connection() as conn:
            rows = conn.execute("SELECT case_id, coalesce(tokens_in, 0) + coalesce(tokens_out, 0) FROM "
                                "experiment_results WHERE experiment_id = %s AND status = 'done'",
                                (experiment_id,)).fetchall()
        return {case_id: int(tokens) for case_id, tokens in rows}

    def _claim(self, experiment: dict, cases: list) -> dict[str, str]:
        """A fresh attempt for every case not done yet (inserted, or taken over from an earlier run, whose
        still-live tasks are cancelled). Returns {case_id: attempt}."""
        attempts = {c.id: str(uuid.uuid4()) for c in cases}
        with self.store.pool.connection() as conn, conn.transaction():
            rows = conn.execute("SELECT case_id, status, task_id FROM experiment_results WHERE experiment_id = %s "
                                "FOR UPDATE", (experiment["id"],)).fetchall()
            done = {r[0] for r in rows if r[1] == "done"}
            orphans = [str(r[2]) for r in rows if r[1] == "running" and r[2] is not None]
            claim = {cid: a for cid, a in attempts.items() if cid not in done}
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO experiment_results (experiment_id, case_id, status, attempt) VALUES (%s, %s, 'running', %s) "
                    "ON CONFLICT (experiment_id, case_id) DO UPDATE SET attempt = EXCLUDED.attempt, task_id = NULL, "
                    "started_at = now() WHERE experiment_results.status = 'running'",
                    [(experiment["id"], cid, a) for cid, a in claim.items()])
        for task_id in orphans:
            self._cancel(task_id)
        return claim

    def _cancel(self, task_id: str) -> None:
        try:
            self.service.transition(task_id, "cancelled", reason="its experiment run stopped; the case runs again")
        except states.IllegalTransition:
            pass  # finished already (its attempt is stale, so it recorded nothing)

    def _submit(self, todo: list[tuple[dict, ExperimentConfig, Any, str, dict]]) -> None:
        """The cases' tasks, SUBMIT_BATCH per transaction (one commit each, as Dask dispatches them)."""
        for start in range(0, len(todo), SUBMIT_BATCH):
            batch = todo[start:start + SUBMIT_BATCH]
            items = []
            for experiment, config, case, attempt, extras in batch:
                new = NewTask.of(prompt=case.input, title=f"experiment {experiment['name']} · case {case.id}"[:500],
                                 model=config.model, mode="single",
                                 memory=config.memory if config.mode == "agent" else None)  # off unless asked
                if config.memory:  # a memory of this experiment's own: it starts empty and learns case by case
                    new = new.owned_by(f"experiment:{experiment['id']}")
                items.append((new, RunOptions(body="experiment_case", classify=False, max_tokens=config.max_tokens,
                                              model=config.model, params={
                                                  "experiment_id": experiment["id"], "attempt": attempt,
                                                  "case": case.model_dump(), "config": config.model_dump(),
                                                  "extras": extras})))
            tasks = self.runner.create_many(items)
            links = [(task["id"], e["id"], case.id, attempt) for task, (e, _, case, attempt, _) in zip(tasks, batch)]
            with self.store.pool.connection() as conn, conn.cursor() as cur:  # case -> task, for resume and compare
                cur.executemany("UPDATE experiment_results SET task_id = %s WHERE experiment_id = %s AND case_id = %s "
                                "AND attempt = %s AND task_id IS NULL", links)

    def _follow(self, ids: list[str], total: int, skipped: int, progress: Callback | None,
                wait: tuple[list[str], int]) -> None:
        """Until every row of the experiments in `wait` (their ids, their number of rows) is done; progress
        counts all of `ids`. A row whose task ended without recording it (its worker died, it was cancelled)
        is recorded here as failed with the task's error, so the run always ends."""
        waiting, expected = wait
        while True:
            with self.store.pool.connection() as conn:
                done, passed, stage_done = conn.execute(
                    "SELECT count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE passed), "
                    "count(*) FILTER (WHERE status = 'done' AND experiment_id = ANY(%s::uuid[])) "
                    "FROM experiment_results WHERE experiment_id = ANY(%s::uuid[])", (waiting, ids)).fetchone()
                if progress:
                    progress(Progress(done, total, passed, skipped))
                if stage_done >= expected:
                    return
                lost = conn.execute(
                    "SELECT r.experiment_id, r.case_id, r.attempt, t.id, t.status, t.error FROM experiment_results r "
                    "JOIN tasks t ON t.id = r.task_id WHERE r.experiment_id = ANY(%s::uuid[]) AND r.status = 'running' "
                    "AND t.status = ANY(%s)", (ids, list(states.TERMINAL))).fetchall()
            for experiment_id, case_id, attempt, task_id, status, error in lost:
                with self.store.pool.connection() as conn, conn.transaction():
                    finish(conn, str(experiment_id), case_id, str(attempt), str(task_id),
                           CaseResult(False, 0.0, error=error or f"its task ended {status} without a result"))
            time.sleep(POLL_S)


def _stages(configs: list[ExperimentConfig]) -> list[list[int]]:
    """The configurations' indexes in rounds: one whose budget comes from another of this run runs after it."""
    names = {c.name: i for i, c in enumerate(configs)}
    level: dict[int, int] = {}

    def depth(i: int, seen: tuple[int, ...] = ()) -> int:
        if i not in level:
            source = names.get(configs[i].budget_from or "")
            if source in seen:
                raise ConfigError(f"{configs[i].name}: budget_from goes round in a circle "
                                  f"({' -> '.join(configs[j].name for j in (*seen, i))}); one must be the loop.")
            level[i] = 0 if source is None else depth(source, (*seen, i)) + 1
        return level[i]

    for i in range(len(configs)):
        depth(i)
    return [[i for i in range(len(configs)) if level[i] == n] for n in range(max(level.values(), default=-1) + 1)]
