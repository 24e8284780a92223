"""HumanEval's three modes, shared by `benchmarks/humaneval.py` and the experiments' modes: one problem in,
one unjudged candidate out (`Attempt`); `workbench.code.humaneval.judge` then runs the hidden tests.

    single    one call with the code loop's own first prompt, stopped where the loop stops (greedy by
              default): exactly the loop's round 1
    loop      `workbench.code.loop.solve` on the problem's task text (signature, docstring, examples), up to
              LOOP_ROUNDS rounds; the model never sees the hidden tests
    resample  samples (temperature RESAMPLE_TEMPERATURE, seeds 1, 2, ...) until the tokens spent reach a
              budget (the loop's tokens on that problem) or `max_samples` are drawn, at least one; the first
              sample that passes the docstring's examples is kept (never chosen by the hidden tests), else
              the first sample. Sampling stops at that sample, since it would be kept anyway.

An Attempt's `fields` are the mode's own record (rounds, samples, ...): the benchmark writes them into its
JSON lines, an experiment into the case's result detail, so both record the same things.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workbench.code.humaneval import MAX_TOKENS, complete, examples_source, loop_task, program, run

LOOP_ROUNDS = 5
RESAMPLE_TEMPERATURE = 0.8
NO_CODE = "the loop produced no solution file"


@dataclass
class Attempt:
    solution: str | None  # the whole program (prompt + candidate); None when the mode produced no code
    tokens_in: int
    tokens_out: int
    fields: dict[str, Any] = field(default_factory=dict)


def single(model, problem: dict, executor=None, *, temperature: float = 0.0, seed: int | None = None,
           max_tokens: int = MAX_TOKENS) -> Attempt:
    options = {"temperature": temperature, "max_tokens": max_tokens, **({"seed": seed} if seed is not None else {})}
    solution, tin, tout = complete(model, problem, **options)
    return Attempt(solution, tin, tout, {"samples": 1})


def loop(model, problem: dict, executor=None, *, max_rounds: int = LOOP_ROUNDS, max_tokens: int = MAX_TOKENS
         ) -> Attempt:
    from workbench.code.loop import solve

    result = solve(loop_task(problem), "python", model=model, max_rounds=max_rounds, executor=executor,
                   max_tokens=max_tokens)
    summary = result.summary()
    fields = {"rounds": summary["rounds"], "model_calls": summary["model_calls"], "stop_reason": result.stop_reason,
              "own_tests_passed": result.ok, "own_tests": summary["tests_run"],
              "round_errors": [f"{r.number} {r.kind}: {r.error}" for r in result.rounds if r.error],
              "round_log": [{"kind": r.kind, "tests": r.tests, "passed": r.passed,
                             "examples_passed": r.examples_passed, "tokens": r.tokens_in + r.tokens_out,
                             "seconds": round(r.model_s + r.sandbox_s, 1), "notes": r.notes} for r in result.rounds]}
    code = result.files.get(result.task.solution_file)
    solution = program(problem["prompt"], code, problem["entry_point"]) if code else None
    return Attempt(solution, result.tokens_in, result.tokens_out, fields)


def resample(model, problem: dict, executor=None, *, budget_tokens: int | None = None, max_samples: int | None = None,
             temperature: float = RESAMPLE_TEMPERATURE, first_seed: int = 1, max_tokens: int = MAX_TOKENS) -> Attempt:
    if budget_tokens is None and max_samples is None:
        raise ValueError("resample needs a token budget (the loop's tokens) or a number of samples")
    from workbench.code.examples import find_examples

    found = find_examples(problem["prompt"], problem["entry_point"])
    spent_in = spent_out = 0
    samples: list[str] = []
    picked, examples_passed = 0, False

    def more() -> bool:
        if not samples:
            return True
        if max_samples is not None and len(samples) >= max_samples:
            return False
        return budget_tokens is None or spent_in + spent_out < budget_tokens

    while more():
        solution, tin, tout = complete(model, problem, temperature=temperature, seed=first_seed + len(samples),
                                       max_tokens=max_tokens)
        samples.append(solution)
        spent_in, spent_out = spent_in + tin, spent_out + tout
        if not found:
            break  # nothing to choose by: the first sample is kept, so more would only spend tokens
        if run(examples_source(solution, found), executor)["passed"]:
            picked, examples_passed = len(samples) - 1, True
            break
    return Attempt(samples[picked], spent_in, spent_out,
                   {"samples": len(samples), "picked_sample": picked + 1, "examples": len(found),
                    "examples_passed": examples_passed, "budget_tokens": budget_tokens})
