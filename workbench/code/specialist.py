"""The seam to the agents' Code specialist: `code_loop: workbench.code.specialist:handle` in agents.yaml
makes the Code specialist run the code loop (`workbench.code.loop`: an answer, tests, samples and fixes
judged in the sandbox) instead of only writing code. Options (specialists.code.options): max_rounds (default 3), language (default: guessed
from the instructions: TypeScript / Java when named, else Python).

Memory (workbench.memory), per call through the options (run_specialist's `options`): memory (true/false;
default WORKBENCH_MEMORY), memory_cache (default WORKBENCH_MEMORY_CACHE), memory_owner (default
WORKBENCH_MEMORY_OWNER). With memory on, the same request already solved for the same owner is answered
from the execution cache; otherwise similar verified solutions and failure notes go into the prompts, the
result passes the quality gate (verified solution or failure note) and the entries used are credited or
decay with the outcome.

Strategy (workbench.memory.strategy): inside a task, the loop's rounds are chosen from the stored outcomes of
the same kind ("code:python") and model among `strategy_rounds` (default 1, 2, 3) and `max_rounds` (the
default until another setting has a record), unless WORKBENCH_STRATEGY=false or the option `strategy: false`.
The choice is a `memory` event in the trace and the rounds allowed are kept in the result (data.max_rounds),
which is what the statistics read back.
"""

from __future__ import annotations

import logging
import random
import re
import time

from workbench import memory
from workbench.agents.specialist import SpecialistCall, SubtaskResult
from workbench.code.loop import CodeResult, solve
from workbench.config import get_settings
from workbench.memory import strategy

log = logging.getLogger(__name__)
STRATEGY_ROUNDS = (1, 2, 3)

_LANGUAGE = (("typescript", re.compile(r"\btype ?script\b|\.ts\b", re.IGNORECASE)), ("java", re.compile(r"\bjava\b|\.java\b", re.IGNORECASE)))


def guess_language(text: str) -> str:
    return next((name for name, pattern in _LANGUAGE if pattern.search(text)), "python")


def handle(call: SpecialistCall) -> SubtaskResult:
    started = time.time()
    request = call.subtask.instructions
    text = request
    if call.context:
        text += "\n\nContext from earlier steps:\n" + "\n".join(f"- {k}: {v}" for k, v in call.context.items())
    language = call.options.get("language") or guess_language(call.subtask.instructions)
    settings = get_settings()
    use_memory = memory.enabled(call.options.get("memory"))
    owner = str(call.options.get("memory_owner") or settings.memory_owner)
    recalled = memory.Recall()
    if use_memory:
        if call.options.get("memory_cache", settings.memory_cache) and not call.context:
            hit = memory.cached_solution(request, owner=owner, language=language, agent="code")
            if hit is not None:
                return _from_cache(call, hit, language, started)
        recalled = memory.recall(text, owner=owner, kinds=("solution", "failure_note"), agent="code")
    max_rounds = choose_rounds(call, language)
    result = solve(text, language, model=call.model, max_rounds=max_rounds, budget=call.budget,
                   memory=recalled.prompt)
    if use_memory:
        # with context the answer is to more than the request: kept under the text it answered
        memory.remember_code(text, language, result, owner=owner, task_id=call.task_id)
        memory.settle(recalled.ids, result.ok, agent="code")
    summary = result.summary()
    blocks = "\n\n".join(f"{name}:\n```{result.task.lang.fence}\n{src.rstrip()}\n```" for name, src in result.files.items())
    coverage = "" if summary["coverage"] is None else f", coverage {summary['coverage']:.0f}%"
    delivered, verdict = _verdict(result, summary, coverage)
    return SubtaskResult(
        subtask_id=call.subtask.id, specialist=call.subtask.specialist, ok=delivered,
        output=f"{verdict}.\n\n{blocks}", status="done" if delivered else "failed",
        data={**summary, "code": result.files.get(result.task.solution_file, ""), "language": language,
              "executed": True, "files": result.files, strategy.ROUNDS: max_rounds},
        error=None if delivered else f"tests not passing ({result.stop_reason})", stop_reason=result.stop_reason,
        model=result.model, steps=len(result.rounds), tokens_in=result.tokens_in, tokens_out=result.tokens_out,
        cost_usd=result.cost_usd, duration_ms=result.seconds * 1000, started_at=started, finished_at=time.time(),
    )


def choose_rounds(call: SpecialistCall, language: str) -> int:
    """The loop's rounds: the configured max_rounds, or, inside a task with the strategy on, the choice the
    stored outcomes of this kind support (seeded by task and subtask: a retried subtask chooses the same).
    The statistics are an aid: a store that cannot be read leaves the configured value."""
    default = int(call.options.get("max_rounds", 3))
    settings = get_settings()
    if not settings.strategy or call.options.get("strategy") is False or not call.task_id:
        return default
    model = getattr(call.model, "model_id", call.model) or settings.model
    candidates = [int(n) for n in call.options.get("strategy_rounds") or STRATEGY_ROUNDS]
    try:
        from workbench.store import get_store

        return strategy.choose_rounds(
            get_store(), kind=strategy.kind_of("code", language), model=str(model), default=default,
            candidates=candidates, rng=random.Random(f"{call.task_id}:{call.subtask.id}"),
            explore=settings.strategy_explore).value
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("strategy statistics unreadable, the loop keeps max_rounds=%s: %s", default, exc)
        return default


def _from_cache(call: SpecialistCall, hit: memory.Hit, language: str, started: float) -> SubtaskResult:
    """The execution cache's answer: the stored verified solution, no model call, saying where it came from."""
    files = hit.body["files"]
    main = hit.body.get("solution_file") or next(iter(files))
    blocks = "\n\n".join(f"{name}:\n```{language}\n{src.rstrip()}\n```" for name, src in files.items())
    source = f" of task {hit.source_task_id}" if hit.source_task_id else ""
    return SubtaskResult(
        subtask_id=call.subtask.id, specialist=call.subtask.specialist, ok=True, status="done",
        output=f"From memory: the verified solution{source} to this same request (its tests passed then; "
               f"{hit.body.get('tests_passed', '?')} tests).\n\n{blocks}",
        data={"code": files.get(main, ""), "language": language, "executed": False, "files": files,
              "memory_entry": hit.id, "from_memory": True},
        stop_reason="memory_cache", model=None, steps=0, started_at=started, finished_at=time.time())


def _verdict(result: CodeResult, summary: dict, coverage: str) -> tuple[bool, str]:
    """Whether the answer is handed over, and the line that says how far it was verified. Handed over: it
    passes every test; or independent answers agree against model-written tests no answer passes
    ("agreed", `code.loop._agreed`: the tests are the likelier mistake); or the kept answer runs (no mechanical
    fault, not a stub), passes every example the request gives and either nothing could test it
    ("unverified") or it passes at least half of the model's own tests."""
    rounds = summary["rounds"]
    if result.ok:
        return True, f"All {summary['tests_passed']} tests pass in the sandbox ({rounds} round(s){coverage})"
    if result.stop_reason == "agreed":
        return True, (f"Independent answers agree (they pass every example of the request, if it gives any, and "
                      f"the same tests); {summary['tests_run'] - summary['tests_passed']} of the model's own "
                      f"{summary['tests_run']} tests fail all of them, and no answer passes those (likely wrong "
                      f"tests: check them)")
    kept = result.final
    runs = (kept is not None and not kept.mechanical and not kept.unwritten
            and kept.examples_passed == kept.examples)
    if runs and result.stop_reason == "unverified":
        return True, (f"Delivered unverified: the request shows no example and no test file the model wrote could "
                      f"judge the code ({rounds} round(s)); check it before use")
    own, own_passed = (kept.tests - kept.examples, kept.passed - kept.examples_passed) if kept else (0, 0)
    if runs and own > 0 and own_passed * 2 >= own:
        return True, (f"Delivered unverified after {rounds} round(s) ({result.stop_reason}): it runs, passes "
                      f"{kept.examples_passed}/{kept.examples} of the request's examples and {own_passed}/{own} "
                      f"of the model's own tests; check the ones it fails")
    return False, (f"Not passing after {rounds} round(s) ({result.stop_reason}): "
                   f"{summary['tests_passed']}/{summary['tests_run']} tests pass")
