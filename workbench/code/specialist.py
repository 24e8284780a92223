"""The seam to the agents' Code specialist: `code_loop: workbench.code.specialist:handle` in agents.yaml
makes the Code specialist run the code loop (`workbench.code.loop`: an answer, tests, samples and fixes
judged in the sandbox) instead of only writing code. Options (specialists.code.options): max_rounds (default 3), language (default: guessed
from the instructions: TypeScript / Java when named, else Python).
"""

from __future__ import annotations

import re
import time

from workbench.agents.specialist import SpecialistCall, SubtaskResult
from workbench.code.loop import CodeResult, solve

_LANGUAGE = (("typescript", re.compile(r"\btype ?script\b|\.ts\b", re.IGNORECASE)), ("java", re.compile(r"\bjava\b|\.java\b", re.IGNORECASE)))


def guess_language(text: str) -> str:
    return next((name for name, pattern in _LANGUAGE if pattern.search(text)), "python")


def handle(call: SpecialistCall) -> SubtaskResult:
    started = time.time()
    text = call.subtask.instructions
    if call.context:
        text += "\n\nContext from earlier steps:\n" + "\n".join(f"- {k}: {v}" for k, v in call.context.items())
    language = call.options.get("language") or guess_language(call.subtask.instructions)
    result = solve(text, language, model=call.model, max_rounds=int(call.options.get("max_rounds", 3)),
                   budget=call.budget)
    summary = result.summary()
    blocks = "\n\n".join(f"{name}:\n```{result.task.lang.fence}\n{src.rstrip()}\n```" for name, src in result.files.items())
    coverage = "" if summary["coverage"] is None else f", coverage {summary['coverage']:.0f}%"
    # "agreed": two independent answers pass every example of the request and fail the same model-written
    # tests, which no answer passes: the tests are the likelier mistake, so the answer is delivered, saying so.
    delivered = result.ok or result.stop_reason == "agreed" or _worth_delivering(result)
    if result.ok:
        verdict = f"All {summary['tests_passed']} tests pass in the sandbox ({summary['rounds']} round(s){coverage})"
    elif result.stop_reason == "agreed":
        verdict = (f"Two independent answers pass every example of the request and agree; "
                   f"{summary['tests_run'] - summary['tests_passed']} of the model's own {summary['tests_run']} tests "
                   f"fail both, and no answer passes them (likely wrong tests: check them)")
    elif delivered and result.stop_reason == "unverified":
        verdict = (f"Delivered unverified: the request shows no example and no test file the model wrote could "
                   f"judge the code ({summary['rounds']} round(s)); check it before use")
    elif delivered:
        kept = result.final
        assert kept is not None  # _worth_delivering needs it
        verdict = (f"Delivered unverified after {summary['rounds']} round(s) ({result.stop_reason}): it runs, passes "
                   f"{kept.examples_passed}/{kept.examples} of the request's examples and "
                   f"{kept.passed - kept.examples_passed}/{kept.tests - kept.examples} of the model's own tests; "
                   f"check the ones it fails")
    else:
        verdict = (f"Not passing after {summary['rounds']} round(s) ({result.stop_reason}): "
                   f"{summary['tests_passed']}/{summary['tests_run']} tests pass")
    return SubtaskResult(
        subtask_id=call.subtask.id, specialist=call.subtask.specialist, ok=delivered,
        output=f"{verdict}.\n\n{blocks}", status="done" if delivered else "failed",
        data={**summary, "code": result.files.get(result.task.solution_file, ""), "language": language,
              "executed": True, "files": result.files},
        error=None if delivered else f"tests not passing ({result.stop_reason})", stop_reason=result.stop_reason,
        model=result.model, steps=len(result.rounds), tokens_in=result.tokens_in, tokens_out=result.tokens_out,
        cost_usd=result.cost_usd, duration_ms=result.seconds * 1000, started_at=started, finished_at=time.time(),
    )


def _worth_delivering(result: CodeResult) -> bool:
    """The kept answer runs (no mechanical fault), passes every example the request gives and at least half
    of the model's own tests, or nothing could test it (no example, no test file that judges): handed over,
    saying so, rather than the whole task failed."""
    kept = result.final
    if kept is None or kept.mechanical or kept.unwritten or kept.examples_passed < kept.examples:
        return False
    if result.stop_reason == "unverified":  # no test file could judge it and the request shows no example
        return True
    own = kept.tests - kept.examples
    return own > 0 and (kept.passed - kept.examples_passed) * 2 >= own
