"""Routing and the Director's fast path, and what a specialist is told (logic only, FunctionModel).

Proven here: a request routed to one specialist is not planned (no Director call; the plan span says
fast_path and which specialist); `multi` gets a plan of two or more subtasks; a router that fails
costs nothing but its call (the plan is made as before); every specialist reads the user's own words
beside the Director's instructions; a code subtask keeps the tests the user asked for; the task row's
understanding comes from the route."""

from __future__ import annotations

import pytest

from workbench.agents.director import DirectorSettings, carry_request, plan, route_task
from workbench.agents.inline import run_task
from workbench.agents.registry import Registry
from workbench.agents.routing import MULTI, Route, route_prompt, route_schema
from workbench.agents.specialist import Subtask
from workbench.tasks.understanding import summary, understanding_of
from workbench.testing import FunctionModel, MemorySink

MEDIAN = "Compare the average cost per model in the execution log, then write a Python function for the median"

recorded = MemorySink()


@pytest.fixture(autouse=True)
def fresh_trace():
    recorded.clear()
    with recorded:
        yield


@pytest.fixture
def registry() -> Registry:
    registry = Registry.from_config()
    registry.get("code").options["code_loop"] = None  # the writing-only Code specialist: no sandbox here
    return registry


def team(route: object, the_plan: dict | None = None, log: list | None = None, router=None) -> FunctionModel:
    """One model for every role, told apart by the system prompt: the router answers `route`, the
    Director `the_plan`, specialists a short text (the Data specialist a query). `log` gets (who, user text)."""
    log = log if log is not None else []

    def fn(messages, options):
        system, user = messages[0]["content"], messages[-1]["content"]
        log.append((system.split("\n")[0][:40], user))
        if system.startswith("Pick who handles"):
            return router(user) if router is not None else route
        if system.startswith("You are the Director"):
            return the_plan or {"subtasks": [{"specialist": "general", "instructions": "answer", "depends_on": []}]}
        if system.startswith("You are the Data"):
            return {"sql": "SELECT 1 AS one"}
        if system.startswith("You are the Code"):
            return "```python\ndef median(xs):\n    s = sorted(xs)\n    return s[len(s) // 2]\n```"
        return "An answer."

    return FunctionModel(fn)


def directors(log: list) -> list:
    return [entry for entry in log if entry[0].startswith("You are the Director")]


def test_a_request_routed_to_one_specialist_is_not_planned(registry):
    log: list = []
    request = "Write a Python function is_prime(n) with tests."
    result = run_task(request, registry=registry, model=team({"route": "code"}, log=log))
    assert result.plan.source == "fast_path" and not directors(log)  # no planning call at all
    assert [(s.id, s.specialist, s.instructions) for s in result.plan.subtasks] == [("s1", "code", request)]
    assert result.results["s1"].ok and result.answer.ok
    code_prompt = next(user for who, user in log if who.startswith("You are the Code"))
    assert code_prompt == request  # the user's words as they are, not a paraphrase (and not twice)
    span = recorded.of("plan")[-1]
    assert span["payload"]["fast_path"] is True and span["payload"]["specialist"] == "code"
    router = next(e for e in recorded.of("agent_step") if e["agent"] == "router")
    assert router["payload"]["route"] == "code" and router["payload"]["single"] is True
    assert result.plan.route["route"] == "code" and result.plan.tokens_in == result.plan.route["tokens_in"]


def test_the_router_call_is_a_handful_of_tokens_over_the_registry(registry):
    names = ["general", "code", "data"]
    schema = route_schema(names)
    assert schema["properties"]["route"]["enum"] == [MULTI, *names] and schema["required"] == ["route"]
    assert list(schema["properties"]) == ["route"]  # one field: every field is tokens a small model generates
    prompt = route_prompt(registry, names)
    assert all(f"- {n}: {registry.get(n).description}" in prompt for n in names) and f"- {MULTI}:" in prompt
    model = team({"route": "data"})
    routed = route_task("How many tasks failed?", registry=registry, model=model)
    assert routed.route == "data" and routed.single and routed.source == "model"
    assert model.requests[0][1]["max_tokens"] <= 16 and model.requests[0][1]["schema"] == schema


def test_a_question_sent_to_the_code_specialist_is_routed_again_among_the_others(registry):
    """The Code specialist declines a question that asks for no program; the router asks once more without it."""
    offers: list[list[str]] = []

    def router(user):
        offers.append(list(model.requests[-1][1]["schema"]["properties"]["route"]["enum"]))
        return {"route": "code"} if "code" in offers[-1] else {"route": "general"}

    model = team(None, router=router)
    question = "What is the average time complexity of merge sort? Answer in one sentence."
    routed = route_task(question, registry=registry, model=model)
    assert [("code" in o) for o in offers] == [True, False]
    assert routed.route == "general" and routed.declined == "code" and routed.single
    router_step = next(e for e in recorded.of("agent_step") if e["agent"] == "router")
    assert router_step["payload"]["declined"] == "code" and router_step["tokens_in"] == routed.tokens_in > 0
    offers.clear()
    routed = route_task("Write a Python function is_prime(n) with tests.", registry=registry, model=model)
    assert routed.route == "code" and routed.declined is None and len(offers) == 1  # a program: taken at once


@pytest.mark.parametrize("answer", [{"route": "astrologer"}, "no idea", {"other": 1}])
def test_a_failed_route_plans_as_before(registry, answer):
    log: list = []
    result = run_task("Tell me a joke", registry=registry, model=team(answer, log=log))
    assert result.plan.route["source"] == "error" and result.plan.route["error"]
    assert result.plan.source == "model" and len(directors(log)) == 1  # the plan was made, as without routing
    assert result.answer.ok


def test_a_router_that_is_down_costs_only_its_call(registry):
    from workbench.errors import ProviderError

    def down(messages, options):
        raise ProviderError("HTTP 503", status=503)

    routed = route_task("Write fizzbuzz", registry=registry, model=FunctionModel(down))
    assert routed.source == "error" and not routed.single and "503" in routed.error
    p = plan("Write fizzbuzz", registry=registry, model=team({"route": "code"}), route=routed)
    assert p.source == "model"  # planned: the failed route is no fast path


def test_routed_multi_gets_a_plan_of_two_or_more_subtasks(registry):
    model = team({"route": "multi"}, {"subtasks": [
        {"specialist": "data", "instructions": "average cost per model", "depends_on": []},
        {"specialist": "code", "instructions": "a median function", "depends_on": []}]})
    request = "The average cost per model in the log plus a Python median function"
    routed = route_task(request, registry=registry, model=model)
    assert routed.route == MULTI and routed.source == "model" and routed.parts is None
    plan(request, registry=registry, model=model, route=routed)
    planning = next(o for m, o in model.requests if m[0]["content"].startswith("You are the Director"))
    assert [size["minItems"] for size in planning["schema"]["properties"]["subtasks"]["anyOf"]] == [2, 3]


def test_a_request_in_parts_is_planned_and_the_specialists_read_the_users_words(registry):
    log: list = []
    the_plan = {"subtasks": [
        {"specialist": "data", "instructions": "average cost per model", "depends_on": []},
        {"specialist": "code", "instructions": "Write a Python function for the mean", "depends_on": []}]}
    model = team({"route": "multi"}, the_plan, log)
    result = run_task(MEDIAN, registry=registry, model=model, options={"data": {"snapshot": str(_events_db())}})
    assert result.plan.source == "model" and [s.id for s in result.plan.subtasks] == ["s1", "s2"]
    planning = next(o for m, o in model.requests if m[0]["content"].startswith("You are the Director"))
    # Worded in parts ("then write"): planned without a routing call, and one subtask may do.
    assert [size["minItems"] for size in planning["schema"]["properties"]["subtasks"]["anyOf"]] == [1, 2, 3]
    assert recorded.of("plan")[-1]["payload"]["fast_path"] is False
    # The Director paraphrased "median" into "mean": the specialist still reads the user's own words.
    code_prompt = next(user for who, user in log if who.startswith("You are the Code"))
    assert code_prompt.startswith("Write a Python function for the mean")
    assert f'"{MEDIAN}"' in code_prompt and "the user's words win" in code_prompt
    data_prompt = next(user for who, user in log if who.startswith("You are the Data"))
    assert "Question: average cost per model" in data_prompt and MEDIAN in data_prompt


def _events_db():
    import tempfile
    from pathlib import Path

    from agent_data import make_events_db

    return make_events_db(Path(tempfile.mkdtemp()) / "events.duckdb")


def test_a_code_subtask_keeps_the_tests_the_user_asked_for(registry):
    request = "Write a Python function fibonacci(n) with unit tests, and explain it"
    the_plan = {"subtasks": [{"specialist": "code", "instructions": "Write fibonacci(n).", "depends_on": []},
                             {"specialist": "general", "instructions": "Explain it", "depends_on": ["s1"]}]}
    p = plan(request, registry=registry, model=team({"route": "multi"}, the_plan),
             route=Route("multi"))
    code, general = p.subtasks
    assert code.instructions == "Write fibonacci(n), with unit tests." and general.instructions == "Explain it"
    assert all(s.request == request for s in p.subtasks) and any("asks for tests" in n for n in p.notes)
    # No tests asked for: none are added.
    quiet = carry_request(plan("Write fibonacci(n) and explain it", registry=registry,
                               model=team({"route": "multi"}, the_plan), route=Route("multi")), registry)
    assert quiet.subtasks[0].instructions == "Write fibonacci(n)."


def test_the_brief_puts_the_users_words_beside_the_instructions_once():
    same = Subtask("s1", "code", "Write is_prime(n)", request="Write  is_prime(n)")
    assert same.brief() == "Write is_prime(n)"  # the fast path: nothing to repeat
    part = Subtask("s2", "code", "Write a mean function", ["s1"], request="Write a median function")
    briefed = part.briefed()
    assert briefed.instructions.startswith("Write a mean function") and '"Write a median function"' in briefed.instructions
    assert briefed.request == "" and briefed.brief() == briefed.instructions  # briefing twice adds nothing
    assert Subtask.coerce(part.as_dict()) == part and Subtask.coerce({"id": "s1", "specialist": "x",
                                                                       "instructions": "y"}).request == ""


def test_the_fast_path_can_be_turned_off(registry):
    registry.director_config["fast_path"] = False
    log: list = []
    result = run_task("Write fizzbuzz", registry=registry, model=team({"route": "code"}, log=log))
    assert result.plan.source == "model" and len(directors(log)) == 1
    assert DirectorSettings.from_dict({"router_model": "local:qwen2.5-coder-0.5b"}).router_model


def test_understanding_comes_from_the_route():
    code = understanding_of("Write a TypeScript function maxOf\nwith tests", Route("code"))
    assert code == {"kind": "code", "language": "typescript", "complexity": 1,
                    "summary": "Write a TypeScript function maxOf"}
    assert understanding_of("Why is the sky blue?", Route("general"))["language"] is None
    assert understanding_of("x", Route(MULTI, source="error"))["kind"] is None
    assert understanding_of("x", Route(MULTI))["complexity"] == 2
    assert len(summary("word " * 100)) == 120


@pytest.mark.parametrize("request_text, words, parts", [
    ("Write a Python function fibonacci(n) with unit tests, and explain it", ", and explain", None),
    ("Count the failed tasks in the log, then write an email to the team", ", then write",
     ["Count the failed tasks in the log", "Write an email to the team"]),
    ("How many tokens did each model use? Also write a formatter function", "Also",
     ["How many tokens did each model use?", "Write a formatter function"]),
])
def test_a_request_worded_in_parts_is_routed_part_by_part(registry, request_text, words, parts):
    """Each part in the user's words gets its own routing call (no planning call) and runs after the part
    before it; a request whose cut leaves a part too short to stand alone ("explain it") is planned."""
    log: list = []
    routes = {"Count the failed tasks in the log": "data", "How many tokens did each model use?": "data"}

    def route_of(text: str) -> dict:
        return {"route": routes.get(text, "code")}

    result = run_task(request_text, registry=registry, model=team(None, log=log, router=route_of))
    assert result.plan.route["route"] == MULTI and result.plan.route["parts"] == words
    assert result.plan.route["source"] == "parts"
    asked = [user for who, user in log if who.startswith("Pick who")]
    if parts is None:  # no part-by-part cut: the Director plans it
        assert result.plan.source == "model" and len(directors(log)) == 1 and not asked
        return
    assert asked == parts and not directors(log) and result.plan.source == "parts"
    assert [(s.id, s.specialist, s.instructions, s.depends_on) for s in result.plan.subtasks] == [
        ("s1", routes[parts[0]], parts[0], []), ("s2", "code", parts[1], ["s1"])]
    assert all(s.request == request_text for s in result.plan.subtasks)  # the whole request still travels
    assert recorded.of("plan")[-1]["payload"]["parts"] == parts and result.waves == [["s1"], ["s2"]]


def test_a_part_that_is_not_for_one_specialist_sends_the_request_to_the_planner(registry):
    log: list = []
    result = run_task("Count the failed tasks in the log, then write an email to the team", registry=registry,
                      model=team({"route": "multi"}, log=log))
    assert result.plan.source == "model" and len(directors(log)) == 1
    assert recorded.of("plan")[0]["payload"]["planned_by_model"] is True


@pytest.mark.parametrize("request_text", ["Write a Java class Stack with push, pop and peek.",
                                          "Create a Python class BankAccount with deposit and withdraw methods.",
                                          "Write a Python function is_prime(n) with tests."])
def test_one_part_requests_keep_the_fast_path(registry, request_text):
    assert route_task(request_text, registry=registry, model=team({"route": "code"})).single


def test_the_director_and_the_router_see_which_tools_a_specialist_holds(tmp_path):
    import os
    import sys
    from pathlib import Path

    import yaml

    from workbench.agents.director import system_prompt
    from workbench.agents.registry import PACKAGED

    tiny = {"command": sys.executable, "args": [str(Path(__file__).with_name("mcp_tiny_server.py"))]}
    servers = {"servers": {"tiny": tiny, "notes": tiny}}
    (Path(os.environ["WORKBENCH_HOME"]) / "mcp_servers.yaml").write_text(yaml.safe_dump(servers))
    config = yaml.safe_load(PACKAGED.read_text())
    config["specialists"]["general"]["tools"] = ["read_file", "mcp:tiny/add", "mcp:notes"]
    path = tmp_path / "agents.yaml"
    path.write_text(yaml.safe_dump(config))
    registry = Registry.from_config(path)
    line = next(x for x in route_prompt(registry, registry.names()).splitlines() if x.startswith("- general:"))
    assert line.endswith("Its tools: read_file, add (on the tiny MCP server), the notes MCP server's tools.")
    assert line in system_prompt(registry, DirectorSettings())
    # Without tools the line is the description alone: the default prompts (and their cached prefixes) stay.
    plain = Registry.from_config()
    assert f"- general: {plain.get('general').description}\n" in route_prompt(plain, plain.names())


@pytest.mark.parametrize("request_text, parts", [
    ("Use the add tool to compute 1234 + 4321 and tell me the result.", None),
    ("Compute the mean of the costs and show me the answer", None),
    ("Write a Python function for the median and explain how it works", "and explain"),
])
def test_asking_to_be_told_the_result_is_not_a_second_part(request_text, parts):
    from workbench.agents.routing import several_parts

    assert several_parts(request_text) == parts
