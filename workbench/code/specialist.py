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
    delivered, verdict = _verdict(result, summary, coverage)
    return SubtaskResult(
        subtask_id=call.subtask.id, specialist=call.subtask.specialist, ok=delivered,
        output=f"{verdict}.\n\n{blocks}", status="done" if delivered else "failed",
        data={**summary, "code": result.files.get(result.task.solution_file, ""), "language": language,
              "executed": True, "files": result.files},
        error=None if delivered else f"tests not passing ({result.stop_reason})", stop_reason=result.stop_reason,
        model=result.model, steps=len(result.rounds), tokens_in=result.tokens_in, tokens_out=result.tokens_out,
        cost_usd=result.cost_usd, duration_ms=result.seconds * 1000, started_at=started, finished_at=time.time(),
    )


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
