"""The gateway's routes: `route:NAME` resolved on every call from the stored outcomes of past runs (the
strategy statistics), on the real store; the choice and why is a `memory` event; no store, the default."""

from __future__ import annotations

import pytest
from helpers import seed_general_outcomes

from workbench.errors import ConfigError, UnknownModelError
from workbench.testing import register_function

POLICY = """
routes:
  answers:
    candidates: [test:route-big, test:route-small]
    specialist: general
"""


def _answer(name):
    return lambda messages, options: f"answered by {name}"


register_function("route-big", _answer("big"))
register_function("route-small", _answer("small"))


@pytest.fixture
def policy(tmp_path, monkeypatch):
    from workbench.config import reload_settings

    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    monkeypatch.setenv("WORKBENCH_GATEWAY_POLICY", str(path))
    monkeypatch.setenv("WORKBENCH_STRATEGY", "true")
    monkeypatch.setenv("WORKBENCH_STRATEGY_EXPLORE", "0")
    reload_settings()
    yield path
    monkeypatch.undo()
    reload_settings()


def test_a_route_answers_from_the_candidate_the_statistics_choose_and_says_why(policy):
    import workbench
    from workbench.store import close_store, open_store

    store = open_store()
    try:
        route = workbench.get_model("route:answers")
        assert route.complete("hi").text == "answered by big"  # no record yet: the default
        seed_general_outcomes(store, "test:route-big", 10, 0, 0.01)
        seed_general_outcomes(store, "test:route-small", 10, 0, 0.001)  # as good, a tenth of the cost
        reply = route.complete("hi again")
        assert reply.text == "answered by small" and reply.model == "test:route-small"
        store.flush()
        events = [e for e in store.events(kinds=["memory"]) if e["agent"] == "gateway"]
        assert [e["payload"]["chose"] for e in events] == ["test:route-big", "test:route-small"]
        assert events[1]["payload"]["why"].startswith("chose the model test:route-small: 10/10 past successes")
    finally:
        close_store()


def test_without_a_store_the_default_answers_and_the_event_says_so(policy):
    import workbench
    from workbench import telemetry

    seen = []
    telemetry.add_sink(seen.append)
    try:
        assert workbench.get_model("route:answers").complete("hi").text == "answered by big"
    finally:
        telemetry.remove_sink(seen.append)
    chosen = [e for e in seen if getattr(e, "kind", None) == "memory"]
    assert chosen and "no store open" in chosen[-1].payload["why"]


def test_an_unknown_route_names_the_routes_there_are_and_a_bad_candidate_is_refused_at_load(policy):
    import workbench
    from workbench.gateway import routes
    from workbench.gateway.policy import load

    listed = routes.listed()  # what `workbench models` and /v1/models add to the providers' models
    assert [(i.name, i.provider) for i in listed] == [("route:answers", "route")]
    assert "test:route-big, test:route-small" in listed[0].reason

    with pytest.raises(UnknownModelError, match="route:answers"):
        workbench.get_model("route:nope")
    policy.write_text("routes:\n  r:\n    candidates: [not-a-model-name]\n")
    with pytest.raises(ConfigError, match="not-a-model-name"):
        load(policy)
