"""Strategy statistics: per task kind, which specialist, model and loop settings delivered, at what cost —
read from the stored subtask outcomes (`task_subtasks`, no bookkeeping of its own) — and the two choices
that read them: how many rounds the Code specialist's loop may take, and which of the candidate models
(WORKBENCH_STRATEGY_MODELS) the Director gives a subtask that names none.

    arms = strategy.table(store)                  # [Arm]: every kind/specialist/model/settings seen
    arms[0].successes, arms[0].mean, arms[0].interval, arms[0].cost_usd
    choice = strategy.choose_rounds(store, kind="code:python", model="local:qwen2.5-coder-1.5b", default=3,
                                    candidates=(1, 2, 3), rng=random.Random(seed), explore=0.05)
    choice.value, choice.why     # 2, "chose the loop with 2 rounds: 9/10 past successes for this kind ..."
    strategy.choose_model(store, specialist="general", default="local:qwen2.5-coder-1.5b",
                          candidates=["local:qwen2.5-coder-0.5b"], rng=rng, explore=0.05).value

The estimate is a Beta(1, 1) prior updated by each arm's successes and failures (a subtask that delivered,
status done, is a success; failed is a failure; cache answers and skipped subtasks ran no loop and are left
out). The choice keeps the configured default until another arm has MIN_TRIALS outcomes; then it takes the
cheapest arm whose posterior mean is within TOLERANCE of the best (more rounds never lower the pass rate of
one request, so success alone would always pick the most rounds). With probability `explore` (at most
MAX_EXPLORE) it tries a uniformly drawn candidate instead, so an arm that looked worse can prove itself.
Every choice is one `memory` event with action `strategy`: what was chosen, from which numbers, and why.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from workbench import telemetry
from workbench.events import Kind

log = logging.getLogger(__name__)
PRIOR = (1.0, 1.0)  # Beta(1, 1): no opinion before the first outcome
MIN_TRIALS = 3  # outcomes an arm needs before it may replace the configured default
TOLERANCE = 0.05  # posterior means this close to the best count as "as good"
MAX_EXPLORE = 0.1
WINDOW = 5000  # newest subtask outcomes read: old ones describe an older workbench
ROUNDS = "max_rounds"
MODEL = "model"


@dataclass
class Outcome:
    """One finished subtask, as the statistics count it."""

    kind: str  # the specialist, and for code its language: "code:python", "general"
    specialist: str
    model: str | None
    settings: str  # "max_rounds=3"; "default" for specialists without loop settings
    ok: bool
    cost_usd: float = 0.0
    tokens: int = 0
    duration_ms: float = 0.0


@dataclass
class Arm:
    kind: str
    specialist: str
    model: str | None
    settings: str
    successes: int = 0
    failures: int = 0
    cost_usd: float = 0.0  # means per outcome
    tokens: float = 0.0
    duration_ms: float = 0.0

    @property
    def trials(self) -> int:
        return self.successes + self.failures

    @property
    def alpha(self) -> float:
        return PRIOR[0] + self.successes

    @property
    def beta(self) -> float:
        return PRIOR[1] + self.failures

    @property
    def mean(self) -> float:
        """The posterior mean of the success rate: (successes + 1) / (trials + 2)."""
        return self.alpha / (self.alpha + self.beta)

    @property
    def interval(self) -> tuple[float, float]:
        """The central 95 % credible interval of the success rate."""
        from scipy.stats import beta

        low, high = beta.ppf([0.025, 0.975], self.alpha, self.beta)
        return float(low), float(high)

    def as_dict(self) -> dict[str, Any]:
        low, high = self.interval
        return {**asdict(self), "trials": self.trials, "mean": round(self.mean, 4), "low": round(low, 4),
                "high": round(high, 4)}


def kind_of(specialist: str, language: str | None) -> str:
    return f"{specialist}:{language}" if language else specialist


def estimate(outcomes: Iterable[Outcome]) -> list[Arm]:
    """One Arm per (kind, specialist, model, settings), with its counts and mean cost; sorted by kind, then
    best posterior mean first."""
    arms: dict[tuple, Arm] = {}
    for o in outcomes:
        key = (o.kind, o.specialist, o.model, o.settings)
        arm = arms.get(key) or arms.setdefault(key, Arm(o.kind, o.specialist, o.model, o.settings))
        n = arm.trials
        arm.cost_usd = (arm.cost_usd * n + o.cost_usd) / (n + 1)  # running means
        arm.tokens = (arm.tokens * n + o.tokens) / (n + 1)
        arm.duration_ms = (arm.duration_ms * n + o.duration_ms) / (n + 1)
        if o.ok:
            arm.successes += 1
        else:
            arm.failures += 1
    return sorted(arms.values(), key=lambda a: (a.kind, -a.mean, a.cost_usd, a.settings, a.model or ""))


# --- the stored outcomes -------------------------------------------------------------------------


def _outcome(specialist: str, status: str, result: Any, task_language: str | None) -> Outcome | None:
    """A task_subtasks row as an Outcome, or None when it ran no loop of its own (a cache answer)."""
    if not isinstance(result, dict):
        return None
    data = result.get("data") if isinstance(result.get("data"), dict) else {}
    if data.get("from_memory") or result.get("stop_reason") in ("memory_cache", "cancelled"):
        return None
    language = data.get("language") or (task_language if specialist == "code" else None)
    rounds = data.get(ROUNDS)
    settings = f"{ROUNDS}={rounds}" if isinstance(rounds, int) else ("unrecorded" if specialist == "code" else "default")

    def number(name: str) -> float:
        value = result.get(name)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0

    return Outcome(kind=kind_of(specialist, language if isinstance(language, str) else None), specialist=specialist,
                   model=result.get("model") if isinstance(result.get("model"), str) else None, settings=settings,
                   ok=status == "done", cost_usd=number("cost_usd"),
                   tokens=int(number("tokens_in") + number("tokens_out")), duration_ms=number("duration_ms"))


def outcomes(store: Any, *, specialist: str | None = None, window: int = WINDOW) -> list[Outcome]:
    """The newest `window` finished (done or failed) subtasks, as Outcomes."""
    sql = ("SELECT s.specialist, s.status, s.result, t.language FROM task_subtasks s JOIN tasks t ON t.id = s.task_id "
           "WHERE s.status IN ('done', 'failed')" + (" AND s.specialist = %s" if specialist else "") +
           " ORDER BY s.finished_at DESC LIMIT %s")
    args = (specialist, window) if specialist else (window,)
    with store.connection() as conn:
        rows = conn.execute(sql, args).fetchall()
    return [o for o in (_outcome(*row) for row in rows) if o is not None]


def table(store: Any) -> list[Arm]:
    """Every arm the stored outcomes show (what `workbench memory strategies` prints)."""
    return estimate(outcomes(store))


# --- the choice ----------------------------------------------------------------------------------


@dataclass
class Choice:
    value: Any  # a number of rounds, or a model
    default: Any
    kind: str
    model: str | None
    explored: bool
    why: str
    pooled: bool = False  # no outcome with this model yet: every model's outcomes were read
    arms: list[dict[str, Any]] = field(default_factory=list)
    setting: str = ROUNDS  # what was chosen: ROUNDS or MODEL

    def payload(self) -> dict[str, Any]:
        return {"action": "strategy", "setting": self.setting, "chose": self.value, "default": self.default,
                "explored": self.explored, "task_kind": self.kind, "model": self.model, "pooled": self.pooled,
                "arms": self.arms, "why": self.why}


def _rounds_of(settings: str) -> int | None:
    name, _, value = settings.partition("=")
    return int(value) if name == ROUNDS and value.isdigit() else None


def _rounds_text(n: int) -> str:
    return f"the loop with {n} round{'s' if n != 1 else ''}"


def _record(arm: Arm | None) -> str:
    return "no past outcomes" if arm is None or not arm.trials else f"{arm.successes}/{arm.trials} past successes"


def decide(arms: dict[Any, Arm], candidates: Sequence[Any], default: Any, rng: random.Random,
           explore: float, describe: Callable[[Any], str] = lambda v: f"{v} rounds") -> tuple[Any, bool, str]:
    """(value, explored, reason) from arms keyed by their setting's value (a number of rounds, a model).
    Pure: the tests' known tables."""
    if not 0.0 <= explore <= MAX_EXPLORE:
        raise ValueError(f"The exploration rate is {explore}; use 0 to {MAX_EXPLORE} (WORKBENCH_STRATEGY_EXPLORE).")
    pool = sorted({*candidates, default})
    if rng.random() < explore:
        value = rng.choice(pool)
        return value, True, f"exploring (rate {explore:.2f}): {_record(arms.get(value))}"
    eligible = {v: a for v, a in arms.items() if v in pool and a.trials >= MIN_TRIALS}
    if not eligible:
        return default, False, f"the configured default: no setting has {MIN_TRIALS} past outcomes yet"
    # the default always competes, with whatever record it has (the prior's alone when none)
    everyone = {**eligible, default: arms.get(default) or Arm("", "", None, str(default))}
    means = {v: a.mean for v, a in everyone.items()}
    best = max(means.values())
    near = [v for v in everyone if means[v] >= best - TOLERANCE]
    # The cheapest of the as-good ones; an arm without outcomes has no known cost: it goes last.
    value = min(near, key=lambda v: (not everyone[v].trials, everyone[v].cost_usd, everyone[v].tokens,
                                     v != default, v))
    chosen = everyone[value]
    others = [f"{describe(v)} {_record(everyone[v])} (mean {means[v]:.2f})" for v in sorted(everyone) if v != value]
    reason = f"posterior mean {means[value]:.2f}"
    if len(near) > 1:
        reason += f", as good as the best (within {TOLERANCE:.2f}) and the cheapest"
    if chosen.trials:
        reason += f" at ${chosen.cost_usd:.6f} and {chosen.tokens:.0f} tokens a run"
    return value, False, reason + (f"; {'; '.join(others)}" if others else "")


def choose_rounds(store: Any, *, kind: str, model: str | None, default: int, candidates: Sequence[int],
                  rng: random.Random, explore: float, agent: str | None = "code") -> Choice:
    """How many rounds the code loop gets for a request of `kind` on `model`, from the stored outcomes of
    that kind (that model's when it has any, else every model's). One `memory` event says what and why."""
    read = [o for o in outcomes(store, specialist=kind.split(":", 1)[0]) if o.kind == kind]
    mine = [o for o in read if o.model == model]
    pooled = bool(read) and not mine
    arms = {v: a for a in estimate(mine or [replace(o, model=None) for o in read])
            if (v := _rounds_of(a.settings)) is not None}
    value, explored, reason = decide(arms, candidates, default, rng, explore)
    scope = "all models" if pooled else (model or "the default model")
    why = f"chose {_rounds_text(value)}: {_record(arms.get(value))} for this kind ({kind}, {scope}); {reason}"
    choice = Choice(value, default, kind, model, explored, why, pooled,
                    [{"settings": f"{ROUNDS}={v}", "successes": a.successes, "trials": a.trials,
                      "mean": round(a.mean, 4), "cost_usd": a.cost_usd, "tokens": round(a.tokens, 1)}
                     for v, a in sorted(arms.items())])
    telemetry.emit(Kind.MEMORY, agent=agent, payload=choice.payload())
    return choice


def choose_model(store: Any, *, specialist: str, default: str, candidates: Sequence[str], rng: random.Random,
                 explore: float, agent: str = "director") -> Choice:
    """Which model a subtask of `specialist` runs on, among `candidates` and the default, from that
    specialist's stored outcomes on each model (every language and loop setting together): the cheapest
    model whose posterior mean is as good as the best's. One `memory` event (setting "model") says why."""
    read = [replace(o, kind=specialist, settings=MODEL) for o in outcomes(store, specialist=specialist)]
    arms = {a.model: a for a in estimate(read) if a.model is not None}
    value, explored, reason = decide(arms, candidates, default, rng, explore, describe=lambda m: m)
    why = f"chose the model {value}: {_record(arms.get(value))} for {specialist} subtasks; {reason}"
    choice = Choice(value, default, specialist, value, explored, why, False,
                    [{"settings": f"{MODEL}={m}", "successes": a.successes, "trials": a.trials,
                      "mean": round(a.mean, 4), "cost_usd": a.cost_usd, "tokens": round(a.tokens, 1)}
                     for m, a in sorted(arms.items()) if m in {*candidates, default}], MODEL)
    telemetry.emit(Kind.MEMORY, agent=agent, payload=choice.payload())
    return choice


__all__ = ["Arm", "Choice", "MAX_EXPLORE", "MIN_TRIALS", "MODEL", "Outcome", "TOLERANCE", "choose_model",
           "choose_rounds", "decide", "estimate", "kind_of", "outcomes", "table"]
