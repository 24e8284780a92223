"""How one case is answered, by the configuration's mode (a registry; `agent` is the task layer's, since it
runs the Director): each takes the case, the configuration and a gateway model and returns an Answer.

    single    one call (temperature, seed, max_tokens from the configuration). A HumanEval case is asked
              with the code loop's own first prompt and stopped where the loop stops (as benchmarks/humaneval.py)
    loop      the code loop (`workbench.code.loop.solve`) on the case's input: code cases only
    resample  HumanEval cases: up to `samples` samples (seeds seed, seed+1, ...); the first that passes the
              docstring's examples is kept (never the hidden tests), else the first sample

Tokens and cost are not counted here: the case body adds up the case's llm_call events.
"""

from __future__ import annotations

from collections.abc import Callable

from workbench.errors import WorkbenchError
from workbench.evals import checkers
from workbench.evals.cases import Case
from workbench.evals.checkers import Answer
from workbench.evals.config import ExperimentConfig

ModeFn = Callable[[Case, ExperimentConfig, object], Answer]
MODES: dict[str, ModeFn] = {}
RESAMPLE_TEMPERATURE = 0.8  # when the configuration asks for temperature 0, samples would all be the same


class ModeMismatch(WorkbenchError):
    http_status = 422
    exit_code = 2


def mode(name: str):
    def decorate(fn: ModeFn) -> ModeFn:
        MODES[name] = fn
        return fn

    return decorate


def _options(config: ExperimentConfig, **over) -> dict:
    options = {"temperature": config.temperature, "max_tokens": config.max_tokens}
    if config.seed is not None:
        options["seed"] = config.seed
    return {**options, **over}


@mode("single")
def single(case: Case, config: ExperimentConfig, model) -> Answer:
    if case.checker_kind == "humaneval":
        from workbench.code import humaneval

        solution, _, _ = humaneval.complete(model, case.checker, **_options(config))
        return Answer(text=solution, solution=solution)
    return Answer(text=model.complete(case.input, **_options(config)).text)


FITS: dict[str, Callable[[Case], bool]] = {
    "loop": checkers.is_code,
    "resample": lambda case: case.checker_kind == "humaneval",
}


def check_fits(config: ExperimentConfig, cases: list[Case]) -> None:
    """Refuse, before anything runs, a mode that cannot answer one of the cases."""
    fits = FITS.get(config.mode)
    misfit = next((c for c in cases if fits is not None and not fits(c)), None)
    if misfit is not None:
        raise ModeMismatch(f"{config.name}: mode {config.mode} cannot answer case {misfit.id!r} (judged by "
                           f"{misfit.checker_kind}); loop needs code cases, resample HumanEval cases. Use mode single "
                           f"or agent for this dataset.")


def _language(case: Case) -> str:
    if case.checker_kind == "all":
        return next((p["language"] for p in case.checker["parts"] if "language" in p), "python")
    return case.checker.get("language", "python")


@mode("loop")
def loop(case: Case, config: ExperimentConfig, model) -> Answer:
    if not checkers.is_code(case):
        raise ModeMismatch(f"Mode loop writes and tests code, but case {case.id!r} is judged as text "
                           f"({case.checker_kind}); use mode single for it.")
    from workbench.code.loop import solve

    result = solve(case.input, _language(case), model=model, max_rounds=config.loop.max_rounds,
                   max_tokens=config.max_tokens)
    code = result.files.get(result.task.solution_file) or ""
    if case.checker_kind == "humaneval":
        from workbench.code import humaneval

        p = case.checker
        solution = humaneval.program(p["prompt"], code, p["entry_point"]) if code else None
        return Answer(text=solution or "", solution=solution)
    return Answer(text=code, files=dict(result.files))


@mode("resample")
def resample(case: Case, config: ExperimentConfig, model) -> Answer:
    if case.checker_kind != "humaneval":
        raise ModeMismatch(f"Mode resample picks samples by a HumanEval docstring's examples; case {case.id!r} "
                           f"is judged by {case.checker_kind}. Use single or loop for it.")
    from workbench.code import humaneval
    from workbench.code.examples import find_examples

    p = case.checker
    found = find_examples(p["prompt"], p["entry_point"])
    temperature = config.temperature or RESAMPLE_TEMPERATURE
    first = None
    for i in range(config.samples):
        seed = (config.seed or 1) + i
        solution, _, _ = humaneval.complete(model, p, **_options(config, temperature=temperature, seed=seed))
        first = first or solution
        if not found:
            break  # nothing to choose by: the first sample is kept
        if humaneval.run(humaneval.examples_source(solution, found))["passed"]:
            return Answer(text=solution, solution=solution)
    return Answer(text=first, solution=first)
