"""How one case is answered, by the configuration's mode (a registry; `agent` is the task layer's, since it
runs the Director): each takes the case, the configuration and a gateway model and returns an Answer.

    single    one call (temperature, seed, max_tokens from the configuration)
    loop      the code loop (`workbench.code.loop.solve`) on the case's input: code cases only
    resample  HumanEval cases: samples (seeds seed, seed+1, ...) up to `samples` of them, or, with
              `budget_from`, up to the tokens that configuration spent on the case (the runner passes it
              as `budget_tokens`); the first that passes the docstring's examples is kept (never the hidden
              tests), else the first sample

HumanEval cases run the very functions benchmarks/humaneval.py runs (`workbench.code.humaneval_modes`), and
their Answer carries the mode's record (rounds, samples, ...) as `detail`. Tokens and cost are not counted
here: the case body adds up the case's llm_call events.
"""

from __future__ import annotations

from collections.abc import Callable

from workbench.errors import WorkbenchError
from workbench.evals import checkers
from workbench.evals.cases import Case
from workbench.evals.checkers import Answer
from workbench.evals.config import ExperimentConfig

ModeFn = Callable[..., Answer]  # (case, config, model, **extras) -> Answer
MODES: dict[str, ModeFn] = {}


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


def _humaneval(attempt, model) -> Answer:
    return Answer(text=attempt.solution or "", solution=attempt.solution,
                  detail={"model": getattr(model, "model_id", None), **attempt.fields})


@mode("single")
def single(case: Case, config: ExperimentConfig, model, **_) -> Answer:
    if case.checker_kind == "humaneval":
        from workbench.code import humaneval_modes

        return _humaneval(humaneval_modes.single(model, case.checker, temperature=config.temperature,
                                                 seed=config.seed, max_tokens=config.max_tokens), model)
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
def loop(case: Case, config: ExperimentConfig, model, **_) -> Answer:
    if not checkers.is_code(case):
        raise ModeMismatch(f"Mode loop writes and tests code, but case {case.id!r} is judged as text "
                           f"({case.checker_kind}); use mode single for it.")
    if case.checker_kind == "humaneval":
        from workbench.code import humaneval_modes

        return _humaneval(humaneval_modes.loop(model, case.checker, max_rounds=config.loop.max_rounds,
                                               max_tokens=config.max_tokens), model)
    from workbench.code.loop import solve

    result = solve(case.input, _language(case), model=model, max_rounds=config.loop.max_rounds,
                   max_tokens=config.max_tokens)
    code = result.files.get(result.task.solution_file) or ""
    return Answer(text=code, files=dict(result.files))


@mode("resample")
def resample(case: Case, config: ExperimentConfig, model, budget_tokens: int | None = None, **_) -> Answer:
    if case.checker_kind != "humaneval":
        raise ModeMismatch(f"Mode resample picks samples by a HumanEval docstring's examples; case {case.id!r} "
                           f"is judged by {case.checker_kind}. Use single or loop for it.")
    from workbench.code import humaneval_modes

    if config.budget_from is not None and budget_tokens is None:
        raise ModeMismatch(f"{config.name}: resampling at {config.budget_from}'s budget, but no token count of "
                           f"{config.budget_from} reached case {case.id!r}; run both configurations together.")
    attempt = humaneval_modes.resample(
        model, case.checker, budget_tokens=budget_tokens if config.budget_from else None,
        max_samples=None if config.budget_from else config.samples,
        temperature=config.temperature or humaneval_modes.RESAMPLE_TEMPERATURE,  # at 0 every sample is alike
        first_seed=config.seed or 1, max_tokens=config.max_tokens)
    return _humaneval(attempt, model)
