"""The Director: routes a task, plans it into subtasks for the registered specialists when it needs
more than one, and aggregates their results.

    r = route_task(task)                  # one short call: a specialist's name, or "multi"
    p = plan(task, route=r)               # a validated Plan
    topological_waves(p)                  # [["s1", "s2"], ["s3"]]: each wave may run in parallel
    answer = aggregate(task, p, {"s1": result1, "s2": result2})   # cites [s1], [s2]

The fast path: a request the router gives to one specialist is not planned at all. Its one-step plan
hands the specialist the user's own words (source "fast_path"; the plan span's payload says
`fast_path: true` and which specialist). Otherwise planning is one schema-constrained call whose enum of
specialists, item and length caps come from the registry and agents.yaml (caps keep small models from
looping; every field costs tokens, so a subtask is only specialist, instructions and depends_on, its id
is its position). The plan is validated (known and enabled specialists, unique ids, existing
dependencies, no cycle — the cycle is named); an invalid plan is re-asked once with the validation
error, then replaced by a one-step plan with the best-guess specialist. Every subtask carries the user's
request beside its instructions (Subtask.request), so a specialist reads the user's words too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from graphlib import CycleError, TopologicalSorter
from typing import Any

from workbench import telemetry
from workbench.agents.actions import parse_json_object
from workbench.agents.agent import resolve_model
from workbench.agents.calls import model_step
from workbench.agents.guards import Budget
from workbench.agents.registry import Registry, default_registry
from workbench.agents.routing import MULTI, Route, route, split_parts
from workbench.agents.specialist import Subtask, SubtaskResult
from workbench.agents.steps import Step
from workbench.errors import Cancelled, PlanError, WorkbenchError
from workbench.providers.base import Model
from workbench.schema import Strict, parse


class DirectorSettings(Strict):
    """The `director:` section of agents.yaml."""

    model: str | None = None
    router_model: str | None = None  # the routing call's model; null: the Director's model
    fast_path: bool = True  # a request routed to one specialist goes to it unplanned
    max_subtasks: int = 3
    max_tokens: int = 320
    reasoning_max_chars: int = 120
    instructions_max_chars: int = 160
    timeout_s: float | None = 120.0
    fallback_specialist: str = "general"
    task_timeout_s: float | None = 900.0  # wall clock of a whole task on Dask: plan, subtasks, answer
    task_max_tokens: int | None = 40_000  # tokens of a whole task, every call counted once

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DirectorSettings:
        return parse(cls, data, "agents.yaml: director")


@dataclass
class Plan:
    task: str
    reasoning: str
    subtasks: list[Subtask]
    # model (first answer valid) | reasked (valid after one correction) | fallback | fast_path (routed, unplanned)
    # | parts (worded in parts, each part routed on its own: no planning call)
    source: str = "model"
    attempts: list[dict[str, Any]] = field(default_factory=list)  # each planning call: output, error, tokens
    notes: list[str] = field(default_factory=list)  # what was changed in the model's plan, and why
    model: str | None = None
    tokens_in: int = 0  # these four: the planning calls and the routing call before them, together
    tokens_out: int = 0
    cost_usd: float = 0.0
    duration_ms: float = 0.0
    route: dict[str, Any] | None = None  # the routing call that preceded the plan (Route.as_dict)

    def get(self, subtask_id: str) -> Subtask:
        return next(s for s in self.subtasks if s.id == subtask_id)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["subtasks"] = [Subtask.coerce(s) for s in data.get("subtasks", [])]
        return cls(**values)


# --- schema, prompt, validation -------------------------------------------------------------------


def plan_schema(specialists: list[str], settings: DirectorSettings, min_subtasks: int = 1) -> dict[str, Any]:
    """The plan's JSON schema: `{"subtasks": [{"specialist", "instructions", "depends_on"}, ...]}`, nothing
    else (each field is tokens a small model generates one forward pass at a time). `subtasks` is one
    fixed-length tuple per plan size (min_subtasks..max_subtasks) in which subtask i is "s<i>" by position
    and may depend only on s1..s<i-1>: under a grammar (llama.cpp) a dangling dependency or a cycle cannot
    even be generated. Validation still runs, for models that ignore schemas."""
    ids = [f"s{i}" for i in range(1, settings.max_subtasks + 1)]

    def subtask(i: int) -> dict[str, Any]:
        earlier = ids[: i - 1]
        # Always with `items`: llama.cpp's grammar ignores maxItems on an array without them, so the first
        # subtask could "depend" on anything (the 0.5B wrote ["data"]).
        depends = {"type": "array", "maxItems": len(earlier), "items": {"type": "string", "enum": earlier}
                   if earlier else {"type": "string"}}
        if earlier:
            depends["uniqueItems"] = True
        return {
            "type": "object",
            "properties": {
                "specialist": {"type": "string", "enum": specialists},
                "instructions": {"type": "string", "minLength": 1, "maxLength": settings.instructions_max_chars},
                "depends_on": depends,
            },
            "required": ["specialist", "instructions", "depends_on"],
        }

    smallest = max(1, min(min_subtasks, settings.max_subtasks))
    plans = [{"type": "array", "prefixItems": [subtask(i) for i in range(1, n + 1)], "items": False,
              "minItems": n, "maxItems": n} for n in range(smallest, settings.max_subtasks + 1)]
    return {"type": "object", "properties": {"subtasks": {"anyOf": plans}}, "required": ["subtasks"]}


def offered(registry: Registry, settings: DirectorSettings) -> list[str]:
    """Enabled specialists, the catch-all FIRST. Measured on the 1.5B model with six benchmark prompts:
    with `general` last it sent every explanation to `code` (2 of 6 routed right); first, 5 of 6."""
    names = registry.names()
    return sorted(names, key=lambda n: n != settings.fallback_specialist)


def system_prompt(registry: Registry, settings: DirectorSettings) -> str:
    team = registry.team(offered(registry, settings))
    return (
        "You are the Director of a team of specialists. Split the user's task into as FEW subtasks as possible: "
        "one per distinct part of the task (a task asking for two different things has two parts; never more "
        f"than {settings.max_subtasks}). Give each subtask to the specialist whose description fits it best.\n"
        f"Specialists:\n{team}\n"
        "Each subtask has a specialist, \"instructions\" (one short sentence: that part of the task, in the "
        "user's words) and \"depends_on\" (earlier subtasks whose results it needs, named s1, s2, ... in "
        "order; [] when it can start at once).\n"
        'Reply with JSON only: {"subtasks": [{"specialist": "...", "instructions": "...", "depends_on": []}]}'
    )


def validate_plan(data: Any, registry: Registry, settings: DirectorSettings | None = None,
                  task: str = "") -> Plan:
    """A Plan from the model's JSON, or PlanError listing every problem (and naming a cycle)."""
    settings = settings or DirectorSettings.from_dict(registry.director_config)
    if not isinstance(data, dict) or not isinstance(data.get("subtasks"), list) or not data["subtasks"]:
        raise PlanError('The plan must be a JSON object with a non-empty "subtasks" list.')
    problems: list[str] = []
    raw = data["subtasks"]
    if len(raw) > settings.max_subtasks:
        problems.append(f"{len(raw)} subtasks; at most {settings.max_subtasks} are allowed")
    subtasks: list[Subtask] = []
    for number, item in enumerate(raw, 1):
        if isinstance(item, dict) and "id" not in item:  # the schema's compact form: the id is the position
            item = {**item, "id": f"s{number}"}
        try:
            subtasks.append(Subtask.coerce(item))
        except PlanError as exc:
            problems.append(str(exc))
    ids = [s.id for s in subtasks]
    problems += [f"id {i!r} is used {ids.count(i)} times; ids must be unique" for i in sorted(set(ids)) if ids.count(i) > 1]
    enabled = set(registry.names())
    for s in subtasks:
        if s.specialist not in enabled:
            state = "is disabled" if s.specialist in registry.names(include_disabled=True) else "does not exist"
            problems.append(f"{s.id}: specialist {s.specialist!r} {state}; use one of {', '.join(sorted(enabled))}")
        if not s.instructions.strip():
            problems.append(f"{s.id}: instructions are empty")
        problems += [f"{s.id} depends on {d!r}, which is not a subtask id" for d in s.depends_on if d not in ids]
        problems += [f"{s.id} depends on itself" for d in s.depends_on if d == s.id]
    cycle = find_cycle(subtasks)
    if cycle:
        problems.append(f"dependency cycle {' -> '.join(cycle)}")
    if problems:
        raise PlanError("Invalid plan: " + "; ".join(problems) + ".")
    return Plan(task=task, reasoning=str(data.get("reasoning", ""))[: settings.reasoning_max_chars * 2],
                subtasks=subtasks)


_TESTS_ONLY = re.compile(r"^\W*(?:(?:write|add|create|generate|provide|implement)\s+(?:\w+\s+){0,2}?)?"
                         r"(?:unit\s+)?tests?\b", re.IGNORECASE)


def fold_test_subtasks(plan: Plan, registry: Registry) -> Plan:
    """Fold a subtask that only writes tests ("Write unit tests for fibonacci") into the earlier subtask
    of the same specialist when that specialist tests its own work (the Code specialist's loop writes
    the tests first and runs them): the 1.5B Director splits "a function with tests" in two, and the
    second subtask then writes, tests and repairs the same function again. Dependents follow the fold."""
    specs = {spec.name: spec for spec in registry.specialists()}
    kept: list[Subtask] = []
    moved: dict[str, str] = {}
    for sub in plan.subtasks:
        spec = specs.get(sub.specialist)
        target = next((k for k in reversed(kept) if k.specialist == sub.specialist), None)
        if spec is not None and spec.writes_tests and target is not None and _TESTS_ONLY.match(sub.instructions):
            target.instructions = f"{target.instructions.rstrip(' .')}; {sub.instructions.strip()}"
            moved[sub.id] = target.id
            plan.notes.append(f"{sub.id} folded into {target.id}: the {sub.specialist} specialist writes and runs "
                              f"the tests of its own code")
            continue
        kept.append(sub)
    for sub in kept:
        sub.depends_on = list(dict.fromkeys(d2 for d in sub.depends_on if (d2 := moved.get(d, d)) != sub.id))
    plan.subtasks = kept
    return plan


def find_cycle(subtasks: list[Subtask]) -> list[str] | None:
    """A dependency cycle as a path that returns to its start (["s1", "s2", "s1"]), or None."""
    order = [s.id for s in subtasks]
    return _first_cycle({s.id: [d for d in s.depends_on if d != s.id] for s in subtasks}, order)


def _first_cycle(deps: Mapping[str, list[str]], order: list[str]) -> list[str] | None:
    try:
        TopologicalSorter(deps).prepare()
    except CycleError as exc:
        # graphlib walks from dependency to dependent; read it the other way, from the earliest subtask
        ring = list(reversed(exc.args[1]))[:-1]
        start = min(range(len(ring)), key=lambda i: order.index(ring[i]) if ring[i] in order else len(order))
        ring = ring[start:] + ring[:start]
        return ring + ring[:1]
    return None


def topological_waves(plan: Plan) -> list[list[str]]:
    """Subtask ids in groups: every subtask's dependencies are in earlier groups; a group may run in parallel."""
    order = [s.id for s in plan.subtasks]
    unknown = sorted({d for s in plan.subtasks for d in s.depends_on} - set(order))
    if unknown:
        raise PlanError(f"The plan depends on subtask(s) {unknown} that it does not have; "
                        f"validate it with validate_plan() first.")
    sorter = TopologicalSorter({s.id: s.depends_on for s in plan.subtasks})
    try:
        sorter.prepare()
    except CycleError:
        raise PlanError(f"The plan has a dependency cycle {' -> '.join(find_cycle(plan.subtasks) or [])}; "
                        f"validate it with validate_plan() first.") from None
    waves: list[list[str]] = []
    while sorter.is_active():
        wave = sorted(sorter.get_ready(), key=order.index)
        sorter.done(*wave)
        waves.append(wave)
    return waves


def skipped_before_start(subtask: Subtask, results: Mapping[str, SubtaskResult],
                         budget: Budget) -> SubtaskResult | None:
    """The rule every executor applies to a subtask whose inputs have all ended, before running it: skipped
    when an input did not finish (never run on missing inputs) or when the task's budget is spent (or past
    its deadline); None: run it."""
    missing = [d for d in subtask.depends_on if not results[d].ok]
    if missing:
        return SubtaskResult.skipped(subtask, f"skipped: its input(s) {', '.join(missing)} did not finish")
    try:
        budget.check()
    except Cancelled:
        raise
    except WorkbenchError as exc:
        return SubtaskResult.skipped(subtask, f"skipped: {exc}")
    return None


# --- planning -------------------------------------------------------------------------------------


def route_task(task: str, *, registry: Registry | None = None, model: Model | str | None = None,
               budget: Budget | None = None) -> Route:
    """The routing call (workbench.agents.routing) on the router model: `model` when one is given (a task
    that names its model, a test), else agents.yaml `director.router_model`, else the Director's model."""
    registry = registry or default_registry()
    settings = DirectorSettings.from_dict(registry.director_config)
    if model is None:
        model = settings.router_model or settings.model
    return route(task, registry=registry, names=offered(registry, settings), model=model, budget=budget)


def plan(task: str, *, registry: Registry | None = None, model: Model | str | None = None,
         budget: Budget | None = None, task_id: str | None = None, route: Route | None = None,
         use_memory: bool | None = None, memory_owner: str | None = None) -> Plan:
    """Plan `task`: unplanned when `route` names one specialist (the fast path); else the model's plan
    (at least two subtasks when the route is multi) if valid after at most one correction, else a
    one-step plan. Every subtask carries the request (Subtask.request). Before the model plans, plans
    that worked for similar past requests and their failure notes are recalled from memory (`use_memory`:
    the task's choice; None: WORKBENCH_MEMORY; `memory_owner`: whose, default WORKBENCH_MEMORY_OWNER) and
    shown after the request."""
    registry = registry or default_registry()
    settings = DirectorSettings.from_dict(registry.director_config)
    if not task or not task.strip():
        raise PlanError("The task is empty: say what you want done.")
    names = offered(registry, settings)
    if not names:
        raise PlanError("No specialist is enabled, so nothing can be planned. Enable one with "
                        "registry.enable(name) or `enabled: true` in agents.yaml.")
    if route is not None and route.single and settings.fast_path and route.route in names:
        return fast_path_plan(task.strip(), route, registry, task_id)
    if route is not None and route.source == "parts" and settings.fast_path:
        by_parts = parts_plan(task.strip(), route, registry, model, budget, task_id)
        if by_parts is not None:
            return by_parts
    llm = resolve_model(model if model is not None else settings.model)
    # Room for two calls (the plan and one correction), each a prompt of up to ~2x the reply cap plus the reply.
    budget = (budget or Budget(name="task")).child(max_tokens=settings.max_tokens * 6, timeout_s=settings.timeout_s,
                                                  name="director")
    messages = [{"role": "system", "content": system_prompt(registry, settings)},
                {"role": "user", "content": task.strip() + _recalled_plans(task.strip(), use_memory, memory_owner)}]
    smallest = 2 if route is not None and route.route == MULTI and route.source == "model" else 1
    options = {"schema": plan_schema(names, settings, smallest), "temperature": 0.0}
    attempts: list[dict[str, Any]] = []
    result: Plan | None = None
    with telemetry.span("plan", agent="director", task_id=task_id) as span:
        for number in (1, 2):
            step = _planning_call(llm, messages, options, settings.max_tokens, budget, number)
            attempts.append(_attempt(step))
            if step.stop_reason is None:
                try:
                    result = fold_test_subtasks(validate_plan(step.action, registry, settings, task.strip()), registry)
                    result.source = "model" if number == 1 else "reasked"
                    result.reasoning = result.reasoning or _parts(result)
                    step.stop_reason = "final_answer"
                except PlanError as exc:
                    step.error = attempts[-1]["error"] = str(exc)
                    messages += [{"role": "assistant", "content": step.model_output or "(no reply)"},
                                 {"role": "user", "content": f"{exc} Fix these problems and reply with the "
                                                             f"corrected plan as JSON only."}]
            telemetry.emit("agent_step", **step.as_event())
            if step.stop_reason is not None:  # a valid plan, or budget/timeout/model down: re-asking cannot help
                break
        result = result or fallback_plan(task.strip(), registry, settings, attempts)
        _account(result, attempts, llm, route)
        carry_request(result, registry)
        span.set(model=result.model, error=attempts[-1].get("error") if result.source == "fallback" else None,
                 payload={"fast_path": False, "plan": result.as_dict()})
    return result


def _recalled_plans(task: str, use_memory: bool | None, owner: str | None = None) -> str:
    """Similar past plans and failure notes for the planner's prompt ("" when memory is off or has none)."""
    from workbench import memory
    from workbench.config import get_settings

    if not memory.enabled(use_memory):
        return ""
    recalled = memory.recall(task, owner=owner or get_settings().memory_owner, kinds=("plan", "failure_note"),
                             agent="director")
    return f"\n\n{recalled.prompt}" if recalled.prompt else ""


def _parts(the_plan: Plan) -> str:
    """The plan's one-line "why", written here: the schema asks the model for no reasoning (tokens)."""
    return f"{len(the_plan.subtasks)} part(s): " + "; ".join(f"{s.id} {s.specialist}" for s in the_plan.subtasks)


def fast_path_plan(task: str, route: Route, registry: Registry, task_id: str | None = None) -> Plan:
    """The one-step plan of a request routed to one specialist: no planning call, the user's own words
    as the instructions. Logged as a plan span whose payload says fast_path and which specialist."""
    with telemetry.span("plan", agent="director", task_id=task_id) as span:
        result = Plan(task=task, reasoning=f"Fast path: the router gave the whole request to {route.route}.",
                      subtasks=[Subtask("s1", route.route, task, [])], source="fast_path")
        _account(result, [], None, route)
        carry_request(result, registry)
        span.set(model=route.model, payload={"fast_path": True, "specialist": route.route, "plan": result.as_dict()})
    return result


def parts_plan(task: str, route: Route, registry: Registry, model: Model | str | None, budget: Budget | None,
               task_id: str | None = None) -> Plan | None:
    """The plan of a request worded in parts (`routing.split_parts`): each part in the user's words, routed
    on its own (a short call each instead of the schema-constrained plan, which the 1.5B often made one
    subtask and so lost a part), each after the one before it so a later part reads the earlier results
    ("..., then explain it"). None when a part cannot be routed to one specialist: the model plans it."""
    settings = DirectorSettings.from_dict(registry.director_config)
    parts = split_parts(task, settings.max_subtasks)
    if len(parts) < 2:
        return None
    routes = [route_task(part, registry=registry, model=model, budget=budget) for part in parts]
    with telemetry.span("plan", agent="director", task_id=task_id) as span:
        if not all(r.single for r in routes):
            span.set(payload={"fast_path": False, "parts": parts, "routes": [r.as_dict() for r in routes],
                              "planned_by_model": True})
            return None
        subtasks = [Subtask(f"s{i}", r.route, part, [f"s{i - 1}"] if i > 1 else [])
                    for i, (part, r) in enumerate(zip(parts, routes), 1)]
        result = Plan(task=task, reasoning=f"{len(parts)} parts where the request says {route.parts!r}, each routed "
                                           f"on its own: " + "; ".join(f"{s.id} {s.specialist}" for s in subtasks),
                      subtasks=subtasks, source="parts")
        _account(result, [r.as_dict() for r in routes], None, route)
        carry_request(result, registry)
        span.set(model=result.model, payload={"fast_path": False, "parts": parts, "plan": result.as_dict()})
    return result


_TESTS = re.compile(r"\b(?:unit[ -]?)?tests?\b|\btested\b|\btesting\b|\bpytest\b|\bunittest\b", re.IGNORECASE)


def carry_request(the_plan: Plan, registry: Registry) -> Plan:
    """Give every subtask the user's own words (Subtask.request; the specialist reads them beside the
    instructions), and keep a tests requirement the instructions lost: a subtask of a specialist that
    tests its own work says "with unit tests" whenever the request asked for tests."""
    specs = {spec.name: spec for spec in registry.specialists(include_disabled=True)}
    asked_for_tests = bool(_TESTS.search(the_plan.task))
    for sub in the_plan.subtasks:
        sub.request = the_plan.task
        spec = specs.get(sub.specialist)
        if asked_for_tests and spec is not None and spec.writes_tests and not _TESTS.search(sub.instructions):
            sub.instructions = f"{sub.instructions.rstrip(' .')}, with unit tests."
            the_plan.notes.append(f"{sub.id}: the request asks for tests; added to the instructions")
    return the_plan


def _planning_call(llm: Model, messages: list[dict], options: dict[str, Any], max_tokens: int, budget: Budget,
                   number: int) -> Step:
    """One planning call as a Step; the plan's JSON (not yet validated) is left in step.action."""
    step = model_step(llm, messages, budget, agent="director", number=number, max_tokens=max_tokens,
                      options=options).step
    if step.stop_reason is None and step.error is None:
        # Models without schema support print JSON in prose: read the first object out of the text.
        step.parsed_from = "schema" if step.action is not None else "text"
        step.action = step.action if step.action is not None else parse_json_object(step.model_output)
    return step


def _attempt(step: Step) -> dict[str, Any]:
    return {"output": step.model_output, "error": step.error, "model": step.model, "tokens_in": step.tokens_in,
            "tokens_out": step.tokens_out, "cost_usd": step.cost_usd, "duration_ms": step.duration_ms}


def _account(result: Plan, attempts: list[dict[str, Any]], llm: Model | None, route: Route | None) -> None:
    """The plan's tokens, cost and time: its planning calls and the routing call before them."""
    calls = [*attempts, route.as_dict()] if route is not None else attempts
    result.attempts = attempts
    result.route = route.as_dict() if route is not None else None
    result.model = next((a["model"] for a in calls if a.get("model")), llm.model_id if llm else None)
    result.tokens_in = sum(a["tokens_in"] for a in calls)
    result.tokens_out = sum(a["tokens_out"] for a in calls)
    result.cost_usd = sum(a["cost_usd"] for a in calls)
    result.duration_ms = sum(a["duration_ms"] for a in calls)


def fallback_plan(task: str, registry: Registry, settings: DirectorSettings,
                  attempts: list[dict[str, Any]]) -> Plan:
    specialist = best_guess(task, registry, settings)
    why = attempts[-1].get("error") if attempts else "no planning call was made"
    return Plan(task=task, reasoning=f"Fallback one-step plan with {specialist}: the Director's plan was not "
                                     f"usable ({str(why)[:200]}).",
                subtasks=[Subtask("s1", specialist, task, [])], source="fallback")


def best_guess(task: str, registry: Registry, settings: DirectorSettings) -> str:
    """The enabled specialist whose keywords the task mentions most; the configured fallback on a tie at 0."""
    text = task.lower()
    scores = {s.name: sum(bool(re.search(rf"\b{re.escape(k.lower())}\b", text)) for k in s.keywords)
              for s in registry.specialists()}
    best = max(scores, key=lambda n: scores[n])
    if scores[best] == 0 and registry.is_enabled(settings.fallback_specialist):
        return settings.fallback_specialist
    return best


# --- aggregation ----------------------------------------------------------------------------------


@dataclass
class FinalAnswer:
    text: str
    citations: list[dict[str, Any]]  # one per subtask: id, specialist, status, instructions, error
    ok: bool  # every subtask done
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def aggregate(task: str, plan: Plan, results: Mapping[str, SubtaskResult | Mapping[str, Any]]) -> FinalAnswer:
    """The final answer: each subtask's output under its [id], then a Sources list of who produced what.

    Deterministic on purpose: a small model's summary can drop or invent facts, while this keeps every
    result and says plainly which subtasks failed or were skipped (a partial result, never silence).
    """
    parsed = {k: v if isinstance(v, SubtaskResult) else SubtaskResult.from_dict(v) for k, v in results.items()}
    sections, citations = [], []
    for sub in plan.subtasks:
        res = parsed.get(sub.id) or SubtaskResult(sub.id, sub.specialist, ok=False, status="skipped",
                                                  error="no result (never run)")
        body = res.output.strip() if res.ok else f"(not available: {res.status} — {res.error})"
        sections.append(f"[{sub.id}] {sub.specialist}: {body}")
        citations.append({"id": sub.id, "specialist": sub.specialist, "status": res.status,
                          "instructions": sub.instructions, "error": res.error})
    failed = [c["id"] for c in citations if c["status"] == "failed"]
    skipped = [c["id"] for c in citations if c["status"] == "skipped"]
    sources = "\n".join(f"[{c['id']}] {c['specialist']} ({c['status']}): {c['instructions']}" for c in citations)
    text = "\n\n".join(sections) + f"\n\nSources:\n{sources}"
    if failed or skipped:
        text += f"\n\nIncomplete: {len(failed)} failed ({', '.join(failed) or '-'}), {len(skipped)} skipped " \
                f"({', '.join(skipped) or '-'}); the answer above covers the rest."
    answer = FinalAnswer(text=text, citations=citations, ok=not failed and not skipped, failed=failed, skipped=skipped)
    telemetry.emit("final_answer", agent="director", error=None if answer.ok else f"failed {failed}, skipped {skipped}",
               payload={**answer.as_dict(), "task": task})
    return answer


def cited(text: str) -> list[str]:
    """The subtask ids a text cites ("[s1]" markers), in order of first appearance."""
    return list(dict.fromkeys(re.findall(r"\[(s\d+)\]", text)))


__all__ = ["DirectorSettings", "FinalAnswer", "Plan", "Subtask", "aggregate", "best_guess", "carry_request", "cited",
           "fallback_plan", "fast_path_plan", "find_cycle", "fold_test_subtasks", "plan", "plan_schema", "route_task",
           "topological_waves", "validate_plan"]
