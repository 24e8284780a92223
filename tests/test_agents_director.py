"""The Director (plan, validation, re-ask, fallback, waves, aggregation), the specialist registry and the
in-process task runner — logic only, with FunctionModel."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest
from agent_data import make_events_db

from workbench.agents.agent import Limits
from workbench.agents.director import (
    Plan,
    aggregate,
    cited,
    find_cycle,
    plan,
    skipped_before_start,
    topological_waves,
    validate_plan,
)
from workbench.agents.guards import Budget
from workbench.agents.inline import run_task
from workbench.agents.registry import Registry, run_specialist
from workbench.agents.specialist import Specialist, Subtask, SubtaskResult
from workbench.errors import ConfigError, PlanError, ProviderError, SpecialistDisabled, UnknownSpecialist
from workbench.testing import FunctionModel, MemorySink

TWO_PART = "Compare the average cost per model in the execution log, then write a Python function for the median"


def sub(id_, specialist="general", deps=(), instructions=None):
    return {"id": id_, "specialist": specialist, "instructions": instructions or f"do {id_}", "depends_on": list(deps)}


def planner(*plans):
    """A Director model answering with `plans` in order (the last repeats)."""
    queue = list(plans)
    return FunctionModel(lambda m, o: queue.pop(0) if len(queue) > 1 else queue[0], name="planner")


@pytest.fixture
def registry() -> Registry:
    registry = Registry.from_config()
    # The writing-only Code specialist: these tests are about planning and orchestration; the sandbox
    # code loop that agents.yaml wires in has its own tests (test_code_loop.py).
    registry.get("code").options["code_loop"] = None
    return registry


@pytest.fixture
def events_db(tmp_path) -> str:
    return str(make_events_db(tmp_path / "events.duckdb"))

recorded = MemorySink()  # every event the code under test emits


@pytest.fixture(autouse=True)
def fresh_trace():
    recorded.clear()
    with recorded:
        yield


def test_valid_plan_with_schema_built_from_the_registry(registry):
    model = planner({"reasoning": "two parts", "subtasks": [sub("s1", "data"), sub("s2", "code")]})
    p = plan(TWO_PART, registry=registry, model=model)
    assert p.source == "model" and [s.specialist for s in p.subtasks] == ["data", "code"]
    assert p.reasoning == "two parts" and p.task == TWO_PART
    messages, options = model.requests[0]
    schema = options["schema"]
    sizes = schema["properties"]["subtasks"]["anyOf"]
    assert [s["maxItems"] for s in sizes] == [1, 2, 3]  # one tuple per plan size, at most max_subtasks
    third = sizes[-1]["prefixItems"][2]["properties"]
    # Few, short fields: a subtask's id is its position, and there is no free-text "reasoning".
    assert set(schema["properties"]) == {"subtasks"} and set(third) == {"specialist", "instructions", "depends_on"}
    assert third["depends_on"]["items"]["enum"] == ["s1", "s2"]
    assert sizes[0]["prefixItems"][0]["properties"]["depends_on"]["maxItems"] == 0
    assert third["specialist"]["enum"] == ["general", "code", "data"]  # the catch-all first
    assert third["instructions"]["maxLength"] == 160 and options["max_tokens"] == 320
    # A plan the model may produce satisfies the schema; one with a back-edge (a cycle) does not.
    compact = [{k: v for k, v in s.items() if k != "id"} for s in (sub("s1"), sub("s2", deps=["s1"]))]
    jsonschema.validate({"subtasks": compact}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"subtasks": [{**compact[0], "depends_on": ["s2"]}, compact[1]]}, schema)
    assert "- data: Answers questions about this workbench" in messages[0]["content"]
    event = recorded.of("plan")[-1]
    assert event["agent"] == "director" and event["payload"]["plan"]["subtasks"][0]["id"] == "s1"


def test_cycle_is_named_and_reasked(registry):
    bad = {"reasoning": "r", "subtasks": [sub("s1", deps=["s2"]), sub("s2", deps=["s1"])]}
    good = {"reasoning": "r", "subtasks": [sub("s1"), sub("s2", deps=["s1"])]}
    model = planner(bad, good)
    p = plan("two things", registry=registry, model=model)
    assert p.source == "reasked" and len(model.requests) == 2
    correction = model.requests[1][0][-1]["content"]
    assert "dependency cycle s1 -> s2 -> s1" in correction and "corrected plan" in correction
    assert p.attempts[0]["error"].startswith("Invalid plan")


def test_unknown_specialist_reasked_then_falls_back_to_best_guess(registry):
    model = planner({"reasoning": "r", "subtasks": [sub("s1", "wizard")]})
    p = plan("Write a Python function that reverses a string", registry=registry, model=model)
    assert p.source == "fallback" and len(model.requests) == 2
    assert [(s.id, s.specialist, s.depends_on) for s in p.subtasks] == [("s1", "code", [])]
    assert "specialist 'wizard' does not exist" in p.reasoning
    assert recorded.of("plan")[-1]["error"]


def test_fallback_uses_the_configured_specialist_when_nothing_matches(registry):
    p = plan("Tell me a joke", registry=registry, model=planner("not json at all"))
    assert p.source == "fallback" and p.subtasks[0].specialist == "general"


def test_unreachable_model_falls_back_at_once(registry):
    def down(messages, options):
        raise ProviderError("HTTP 503", status=503)

    model = FunctionModel(down)
    p = plan("How many tokens did each model use in the execution log?", registry=registry, model=model)
    assert p.source == "fallback" and p.subtasks[0].specialist == "data" and len(model.requests) == 1


def test_a_tests_only_subtask_is_folded_into_the_code_subtask_it_tests(registry):
    split = {"reasoning": "code, then its tests", "subtasks": [
        sub("s1", "code", instructions="Write a Python function fibonacci(n)."),
        sub("s2", "code", ["s1"], "Write unit tests for the fibonacci function"),
        sub("s3", "general", ["s1", "s2"], "Explain the function")]}
    p = plan("Write a Python function fibonacci(n) with unit tests, and explain it", registry=registry,
             model=planner(json.dumps(split)))
    assert [s.id for s in p.subtasks] == ["s1", "s3"] and p.source == "model"
    assert p.get("s1").instructions == "Write a Python function fibonacci(n); Write unit tests for the fibonacci function"
    assert p.get("s3").depends_on == ["s1"] and p.notes == [
        "s2 folded into s1: the code specialist writes and runs the tests of its own code"]
    assert topological_waves(p) == [["s1"], ["s3"]]
    for kept in ([sub("s1", "code", instructions="Write is_prime(n)"),  # not tests-only
                  sub("s2", "code", instructions="Write a function testing_mode()")],
                 [sub("s1", instructions="Explain recursion"),  # general does not test its own work
                  sub("s2", deps=["s1"], instructions="Write tests for a reader of the explanation")]):
        p = plan("two", registry=registry, model=planner(json.dumps({"reasoning": "two", "subtasks": kept})))
        assert len(p.subtasks) == 2 and not p.notes


def test_simple_task_may_be_a_single_step(registry):
    p = plan("Explain recursion", registry=registry, model=planner({"reasoning": "one", "subtasks": [sub("s1")]}))
    assert len(p.subtasks) == 1 and p.source == "model"


def test_disabled_specialist_is_excluded(registry):
    registry.disable("code")
    model = planner({"reasoning": "r", "subtasks": [sub("s1", "code")]}, {"reasoning": "r", "subtasks": [sub("s1")]})
    p = plan("Write code", registry=registry, model=model)
    options = model.requests[0][1]
    first = options["schema"]["properties"]["subtasks"]["anyOf"][0]["prefixItems"][0]["properties"]
    assert first["specialist"]["enum"] == ["general", "data"]
    assert "- code:" not in model.requests[0][0][0]["content"]
    assert "specialist 'code' is disabled" in model.requests[1][0][-1]["content"]
    assert p.subtasks[0].specialist == "general"


def test_validation_lists_every_problem(registry):
    data = {"reasoning": "r", "subtasks": [sub("s1", deps=["s9"]), sub("s1"), sub("s3", deps=["s3"]),
                                           {"id": "s4"}]}
    with pytest.raises(PlanError) as err:
        validate_plan(data, registry)
    text = str(err.value)
    assert "id 's1' is used 2 times" in text and "depends on 's9', which is not a subtask id" in text
    assert "s3 depends on itself" in text and "A subtask needs id, specialist and instructions" in text
    with pytest.raises(PlanError, match="non-empty"):
        validate_plan({"subtasks": []}, registry)


def test_plans_that_cannot_be_made_fail_clearly(registry):
    with pytest.raises(PlanError, match="empty"):
        plan("  ", registry=registry, model=planner({}))
    for name in registry.names():
        registry.disable(name)
    with pytest.raises(PlanError, match="No specialist is enabled"):
        plan("anything", registry=registry, model=planner({}))


def test_topological_waves_group_independent_subtasks():
    p = Plan(task="t", reasoning="", subtasks=[Subtask.coerce(s) for s in [
        sub("s1"), sub("s2", deps=["s1"]), sub("s3", deps=["s1"]), sub("s4", deps=["s2", "s3"]), sub("s5")]])
    assert topological_waves(p) == [["s1", "s5"], ["s2", "s3"], ["s4"]]
    assert find_cycle(p.subtasks) is None
    p.subtasks[0].depends_on = ["s4"]
    assert find_cycle(p.subtasks) == ["s1", "s4", "s2", "s1"]
    with pytest.raises(PlanError, match="cycle"):
        topological_waves(p)


def test_plan_round_trips_through_json(registry):
    p = plan("x", registry=registry, model=planner({"reasoning": "r", "subtasks": [sub("s1"), sub("s2", deps=["s1"])]}))
    again = Plan.from_dict(json.loads(json.dumps(p.as_dict())))
    assert again == p


def test_aggregate_cites_each_subtask_and_reports_failures():
    p = Plan(task="t", reasoning="", subtasks=[Subtask.coerce(s) for s in [
        sub("s1", "data", instructions="average cost per model"), sub("s2", "code", instructions="median function"),
        sub("s3", "general", deps=["s2"], instructions="explain it")]])
    results = {
        "s1": SubtaskResult("s1", "data", ok=True, output="| model | avg |"),
        "s2": SubtaskResult.failed(Subtask.coerce(sub("s2", "code")), "model crashed"),
        "s3": SubtaskResult.skipped(Subtask.coerce(sub("s3")), "skipped: its input(s) s2 did not finish").as_dict(),
    }
    answer = aggregate("t", p, results)
    assert cited(answer.text) == ["s1", "s2", "s3"]
    assert "[s1] data: | model | avg |" in answer.text
    assert "[s1] data (done): average cost per model" in answer.text
    assert "[s2] code (failed): median function" in answer.text
    assert answer.failed == ["s2"] and answer.skipped == ["s3"] and not answer.ok
    assert "Incomplete: 1 failed (s2), 1 skipped (s3)" in answer.text
    assert recorded.of("final_answer")[-1]["payload"]["citations"][0]["id"] == "s1"


# --- registry -------------------------------------------------------------------------------------


def _echo(call):
    return SubtaskResult(call.subtask.id, call.subtask.specialist, ok=True, output=f"echo: {call.subtask.instructions}")


ECHO = Specialist(name="echo", description="Repeats the instructions back, for tests.", handler=_echo,
                  keywords=("echo",))


def test_registry_reads_models_limits_and_extra_specialists_from_the_agents_file(tmp_path, monkeypatch):
    path = tmp_path / "agents.yaml"
    path.write_text(
        "director: {max_subtasks: 2, max_tokens: 200}\n"
        "specialists:\n"
        "  general: {model: 'test:echo', limits: {max_steps: 2}}\n"
        "  code: {enabled: false}\n"
        "  data: {options: {max_rows: 5}}\n"
        "  echo: {factory: 'test_agents_director:ECHO', model: 'test:echo'}\n")
    monkeypatch.setenv("WORKBENCH_AGENTS_FILE", str(path))
    from workbench.config import reload_settings

    reload_settings()
    registry = Registry.from_config()
    assert registry.names() == ["general", "data", "echo"] and registry.names(include_disabled=True)[1] == "code"
    general = registry.get("general")
    assert general.model == "test:echo" and general.limits.max_steps == 2 and general.limits.max_tokens_per_call == 512
    assert registry.get("data").options["max_rows"] == 5 and registry.get("data").options["query_timeout_s"] == 10
    # The new specialist reaches the Director's prompt and schema with no Director change.
    model = planner({"reasoning": "r", "subtasks": [sub("s1", "echo")]})
    p = plan("echo this", registry=registry, model=model)
    assert p.subtasks[0].specialist == "echo"
    assert "- echo: Repeats the instructions back" in model.requests[0][0][0]["content"]
    assert model.requests[0][1]["max_tokens"] == 200
    echoed = run_specialist(p.subtasks[0], registry=registry).output
    assert echoed.startswith("echo: do s1") and '"echo this"' in echoed  # the user's own words beside it


def test_registry_lifecycle_and_health(registry, tmp_path):
    registry.register(ECHO)
    with pytest.raises(ConfigError, match="already registered"):
        registry.register(ECHO)
    registry.disable("echo")
    with pytest.raises(SpecialistDisabled, match="registry.enable"):
        registry.require("echo")
    registry.enable("echo")
    assert registry.require("echo") is registry.get("echo")
    registry.unregister("echo")
    with pytest.raises(UnknownSpecialist, match="Registered specialists: general, code, data"):
        registry.get("echo")
    registry.register(ECHO)
    registry.get("data").options["snapshot"] = str(tmp_path / "missing.duckdb")
    registry.disable("code")
    health = registry.health()
    assert health["code"].ok is False and health["code"].reason == "disabled"
    assert health["data"].ok is False and "does not exist" in health["data"].reason


@pytest.mark.parametrize("text, message", [
    ("specialists:\n  general: {colour: blue}\n", "Unknown key(s) ['colour']"),
    ("specialists:\n  genral: {enabled: false}\n", "not registered"),
    ("specialists:\n  general: {limits: {max_stepz: 3}}\n", "max_stepz"),
    ("specialists:\n  x: {factory: 'nowhere.module:X'}\n", "cannot import"),
    ("wizards: {}\n", "Unknown key(s) ['wizards']; use some of: director, specialists"),
    ("- general\n", "expected a mapping of director, specialists"),
    ("specialists:\n  general: {tools: [launch_missiles]}\n", "launch_missiles"),
])
def test_bad_agents_file_says_how_to_fix(tmp_path, text, message):
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        Registry.from_config(path)


# --- specialists and the in-process task runner ---------------------------------------------------


def team_model(log):
    """One FunctionModel playing every role, picked by the system prompt (who is asking)."""
    plan_ = {"reasoning": "data then prose", "subtasks": [
        sub("s1", "data", instructions="average cost per model"),
        sub("s2", "code", instructions="median function"),
        sub("s3", "general", deps=["s1", "s2"], instructions="summarise")]}

    def fn(messages, options):
        system = messages[0]["content"]
        log.append((system.split(".")[0], messages[-1]["content"]))
        if system.startswith("You are the Director"):
            return plan_
        if system.startswith("You are the Data"):
            return {"sql": "SELECT model, avg(cost_usd) AS avg_cost FROM events GROUP BY model ORDER BY model"}
        if system.startswith("You are the Code"):
            return "```python\ndef median(xs):\n    s = sorted(xs)\n    return s[len(s) // 2]\n```"
        return "Summary citing [s1] and [s2]."

    return FunctionModel(fn)


def test_run_task_passes_context_and_cites(registry, events_db):
    log: list = []
    result = run_task(TWO_PART, registry=registry, model=team_model(log), options={"data": {"snapshot": events_db}})
    assert result.waves == [["s1", "s2"], ["s3"]]
    assert all(r.ok for r in result.results.values()), result.results
    assert result.results["s1"].data["rows"] and result.results["s1"].data["sql"].startswith("SELECT model")
    code = result.results["s2"].data
    assert code["executed"] is False and "def median" in code["code"] and "Not executed" in result.results["s2"].output
    general_prompt = next(user for who, user in log if who.startswith("You are the General"))
    assert "[s1]\nSQL I ran" in general_prompt and "[s2]\n```python" in general_prompt
    assert cited(result.answer.text) == ["s1", "s2", "s3"] and result.answer.ok
    assert "3/3 subtasks done" in result.summary()


def test_failure_is_isolated_and_dependents_are_skipped(registry, events_db):
    log: list = []
    result = run_task(TWO_PART, registry=registry, model=team_model(log))  # no snapshot: data fails
    assert result.results["s1"].status == "failed" and "no execution-log snapshot" in result.results["s1"].error
    assert result.results["s2"].ok
    assert result.results["s3"].status == "skipped" and "s1" in result.results["s3"].error
    assert not any(who.startswith("You are the General") for who, _ in log)
    assert result.answer.failed == ["s1"] and result.answer.skipped == ["s3"]


def test_a_subtask_is_skipped_when_an_input_did_not_finish_or_the_budget_is_spent():
    """The one skip rule of both executors (in-process and on Dask)."""
    done = SubtaskResult("s1", "general", ok=True, output="x")
    failed = SubtaskResult.failed(Subtask.coerce(sub("s2")), "boom")
    results = {"s1": done, "s2": failed}
    budget = Budget(max_usd=0.01)
    assert skipped_before_start(Subtask.coerce(sub("s3", deps=["s1"])), results, budget) is None
    skipped = skipped_before_start(Subtask.coerce(sub("s3", deps=["s1", "s2"])), results, budget)
    assert skipped.status == "skipped" and skipped.error == "skipped: its input(s) s2 did not finish"
    budget.charge(usd=0.01)
    spent = skipped_before_start(Subtask.coerce(sub("s3", deps=["s1"])), results, budget)
    assert spent.status == "skipped" and spent.error.startswith("skipped: The task cost budget is spent")


def test_specialist_disabled_mid_run_fails_only_its_subtask(registry):
    registry.disable("code")
    result = run_specialist(sub("s2", "code"), registry=registry, model=team_model([]))
    assert result.status == "failed" and "SpecialistDisabled" in result.error
    crash = Specialist(name="crash", description="Always raises.", handler=lambda call: 1 / 0)
    registry.register(crash)
    result = run_specialist(sub("s9", "crash"), registry=registry)
    assert result.status == "failed" and "crash crashed: ZeroDivisionError" in result.error
    assert recorded.of("subtask")[-1]["payload"]["subtask_id"] == "s9"


def test_code_loop_seam_is_one_configured_function(registry):
    registry.get("code").options["code_loop"] = "test_agents_director:fake_code_loop"
    result = run_specialist(sub("s1", "code"), registry=registry)
    assert result.data == {"executed": True, "passed": True}


def fake_code_loop(call):
    return SubtaskResult(call.subtask.id, "code", ok=True, output="ran it", data={"executed": True, "passed": True})


def test_specialist_limits_apply(registry):
    registry.get("general").limits = Limits(max_steps=1, max_tokens_per_call=7)
    model = FunctionModel(lambda m, o: "short")
    result = run_specialist(sub("s1"), registry=registry, model=model)
    assert result.ok and model.requests[0][1]["max_tokens"] == 7


def test_every_event_fits_the_store_schema(registry, events_db, monkeypatch):
    """Each record the agents emit passes the store's own row validation (columns, UUID task id, payload)."""
    from workbench.store.writer import build_row

    result = run_task(TWO_PART, registry=registry, model=team_model([]), options={"data": {"snapshot": events_db}})
    records = recorded.of()
    rows = [build_row(r) for r in records]  # raises on a value the store would refuse
    assert result.answer.ok and len(rows) == len(records) > 0
    assert {"task", "plan", "subtask", "agent", "agent_step", "tool_call", "final_answer"} <= {r["kind"] for r in records}
    task_span = next(r for r in records if r["kind"] == "task")
    assert {r["task_id"] for r in records} == {task_span["task_id"]}  # one task = one trace
    spans = {r["span_id"]: r for r in records if r.get("span_id")}
    for r in records:  # every event hangs under a span of the same task (the task span is the root)
        assert r is task_span or r["parent_span_id"] in spans, r["kind"]


def test_the_first_subtask_can_depend_on_nothing_even_under_a_grammar():
    """llama.cpp's grammar ignores maxItems on an array without `items`: the 0.5B then wrote
    `"depends_on": ["data"]` for s1 and the plan fell back to one step. (The grammar is made in a child
    process: llama_cpp stays out of the test process, whose model isolation another test checks.)"""
    import subprocess
    import sys

    from workbench.agents.director import DirectorSettings, plan_schema

    schema = plan_schema(["general", "code", "data"], DirectorSettings.from_dict({"max_subtasks": 3}))
    grammar = subprocess.run(
        [sys.executable, "-c", "import sys; from llama_cpp.llama_grammar import json_schema_to_gbnf; "
                               "print(json_schema_to_gbnf(sys.stdin.read()))"],
        input=json.dumps(schema), capture_output=True, text=True, check=True, timeout=120).stdout
    first = [line for line in grammar.splitlines() if re.match(r"subtasks-\d+-tuple-0-depends-on ::=", line)]
    assert first and all(re.fullmatch(r'\S+ ::= "\[" space\s+"\]" space', line) for line in first), first
