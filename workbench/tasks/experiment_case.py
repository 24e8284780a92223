"""The `experiment_case` task body: one case of an experiment, run as a normal traced task.

The task's parameters (RunOptions.params) carry the experiment, the case, its configuration and the
`attempt` that owns the case's result row. The body first checks the attempt still owns it (a task left
over from a crashed run stops there without calling a model), answers the case in the configuration's
mode (its model calls uncached), judges it, and hands the row to the runner, which writes it in the transaction of the task's final status. Tokens and cost are the task's llm_call events added up as they
are emitted (the agent mode's come from the Director's result, since its calls run on other workers).
A case that fails with an error still gets its row (passed false, the error), then fails its task.
"""

from __future__ import annotations

import time
from typing import Any

from workbench import telemetry
from workbench.errors import Cancelled, TaskFailed, WorkbenchError
from workbench.evals import checkers, modes, results
from workbench.evals.cases import Case
from workbench.evals.checkers import Answer
from workbench.evals.config import ExperimentConfig

DETAIL_SKIP = ("solution",)  # already the row's output


class _Usage:
    """Adds up the llm_call events of one task emitted in this process."""

    def __init__(self, task_id: str):
        self.task_id, self.tokens_in, self.tokens_out, self.cost_usd = task_id, 0, 0, 0.0

    def __call__(self, event: Any) -> None:
        if event.kind == "llm_call" and event.task_id == self.task_id:
            self.tokens_in += event.tokens_in or 0
            self.tokens_out += event.tokens_out or 0
            self.cost_usd += event.cost_usd or 0.0


def _answer(task: dict, ctx, case: Case, config: ExperimentConfig, usage: _Usage) -> Answer:
    if config.mode == "agent":
        from workbench.evals.answers import from_agent_result
        from workbench.tasks.agents_on_dask import run_agents

        out = run_agents(task, ctx)
        usage.tokens_in, usage.tokens_out = out.get("tokens_in", 0), out.get("tokens_out", 0)
        usage.cost_usd = out.get("cost_usd") or 0.0
        return from_agent_result(out)  # judged as the agents benchmark judges: subtask outputs, code, SQL rows
    return modes.MODES[config.mode](case, config, _uncached(ctx), **ctx.options.params.get("extras", {}))


def _uncached(ctx):
    """The case's model without the response cache: each arm pays for its own calls (as the benchmarks do), so
    a loop whose first call repeats single shot's is not timed and priced as a cache hit."""
    from workbench import gateway, providers

    return gateway.build(providers.get_model(ctx.options.model or ctx.task.get("model")), cache=False)


def run_case(task: dict, ctx) -> dict:
    p = ctx.options.params
    experiment_id, attempt = p["experiment_id"], p["attempt"]
    case = Case.model_construct(**p["case"])
    with ctx.service.connection() as conn:
        if not results.is_current(conn, experiment_id, case.id, attempt):
            return {"answer": "", "superseded": "another run of the experiment owns or finished this case"}
    config = ExperimentConfig(**p["config"])
    usage = _Usage(task["id"])
    telemetry.add_sink(usage)
    start = time.perf_counter()
    answer: Answer | None = None
    try:
        answer = _answer(task, ctx, case, config, usage)
        ctx.check_cancelled()
        verdict = checkers.check(case, answer)
        result = results.CaseResult(passed=verdict.passed, score=verdict.score, output=answer.text,
                                    detail={"why": verdict.why, **(answer.detail or {}),
                                            **{k: v for k, v in verdict.detail.items() if k not in DETAIL_SKIP}})
    except Cancelled:
        raise
    except WorkbenchError as exc:
        result = results.CaseResult(False, 0.0, error=str(exc), output=answer.text if answer else None)
    except Exception as exc:  # noqa: BLE001 - a case that breaks is a failed case, recorded, not a lost one
        result = results.CaseResult(False, 0.0, error=f"{type(exc).__name__}: {exc}",
                                    output=answer.text if answer else None)
    finally:
        telemetry.remove_sink(usage)
    result.duration_ms = (time.perf_counter() - start) * 1000
    result.tokens_in, result.tokens_out, result.cost_usd = usage.tokens_in, usage.tokens_out, usage.cost_usd
    # Recorded in the transaction that records the task's final status: both, or neither.
    ctx.on_commit.append(lambda conn: results.finish(conn, experiment_id, case.id, attempt, task["id"], result))
    out = {"answer": result.output or "", "case_id": case.id, "experiment_id": experiment_id,
           "passed": result.passed, "score": result.score,
           "tokens_in": result.tokens_in, "tokens_out": result.tokens_out, "cost_usd": result.cost_usd}
    if result.error:
        raise TaskFailed(result.error, out)
    return out
