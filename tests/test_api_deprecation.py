"""The API versioning policy, as the served app applies it: a deprecated route keeps answering and says so
on every answer (`Deprecation`, `Sunset`, `Link` to the docs and the successor), the OpenAPI schema marks
it, and the registry (workbench/server/deprecation.py) and the app's routes agree both ways.

The app is the served one (`create_app`) without its lifespan (no store, no model): the headers are added
before any handler runs. The successor lives under /api/v1, and still answers while the store is down.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import pytest
from starlette.testclient import TestClient

from workbench.config import reload_settings
from workbench.server import degraded, deprecation
from workbench.server.deprecation import DEPRECATED, Deprecated

BASE = "http://127.0.0.1:5006"
OLD, NEW = "/gateway/health", "/api/v1/gateway/health"


@pytest.fixture(scope="module")
def app():
    from workbench.server.app import create_app

    return create_app()


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app, base_url=BASE)


def link_targets(value: str) -> dict[str, str]:
    return {rel: target for target, rel in re.findall(r'<([^>]+)>[^,]*?rel="([^"]+)"', value)}


def test_the_deprecated_route_answers_as_before_and_says_it_is_deprecated(client):
    old, new = client.get(OLD), client.get(NEW)
    assert old.status_code == 200 and new.status_code == 200, (old.text, new.text)
    assert old.json().keys() == new.json().keys()  # same answer: clients move by changing the path only
    since = re.fullmatch(r"@(\d+)", old.headers["deprecation"])  # RFC 9745: a structured-field date
    assert since, old.headers["deprecation"]
    since_day = datetime.fromtimestamp(int(since.group(1)), tz=timezone.utc).date()
    sunset_day = parsedate_to_datetime(old.headers["sunset"]).date()  # RFC 8594: an HTTP-date
    assert sunset_day - since_day >= timedelta(days=180), "the policy: six months at least"
    links = link_targets(old.headers["link"])
    assert links == {"deprecation": "/docs", "successor-version": NEW}
    assert client.get(links["deprecation"]).status_code == 200  # the link resolves on the served app


def test_current_routes_carry_no_deprecation_headers(client):
    for path in (NEW, "/health?quick=true", "/v1/models", "/openapi.json"):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert "deprecation" not in answer.headers and "sunset" not in answer.headers, path


def test_a_refused_request_on_a_deprecated_route_still_says_so(monkeypatch):
    from workbench.server.app import create_app

    monkeypatch.setenv("WORKBENCH_API_KEY", "a-key-for-the-deprecation-test")
    reload_settings()
    try:
        keyed = TestClient(create_app(), base_url=BASE)
        refused = keyed.get(OLD)
        assert refused.status_code == 401
        assert refused.headers["deprecation"].startswith("@") and "sunset" in refused.headers
        allowed = keyed.get(OLD, headers={"X-API-Key": "a-key-for-the-deprecation-test"})
        assert allowed.status_code == 200 and "deprecation" in allowed.headers
    finally:
        monkeypatch.delenv("WORKBENCH_API_KEY")
        reload_settings()


def test_the_gateway_health_answers_while_the_store_is_down():
    from workbench.server.app import create_app

    app = create_app()
    c = TestClient(app, base_url=BASE)
    assert c.get(NEW).status_code == 200  # builds the middleware stack
    degraded._gate(app).mark_down("OperationalError: the test stopped it")
    assert c.get("/api/v1/tasks").status_code == 503  # the store-backed routes are gated
    assert c.get(NEW).status_code == 200  # the gateway's state lives in the process, not in the store


def test_the_openapi_schema_marks_exactly_the_registered_routes_deprecated(client):
    paths = client.get("/openapi.json").json()["paths"]
    marked = {path for path, ops in paths.items() for op in ops.values() if op.get("deprecated")}
    registered = {p for p in paths if deprecation.deprecation_of(p)}
    assert marked == registered == {OLD}
    described = paths[OLD]["get"]["description"]
    assert NEW in described and str(DEPRECATED[0].sunset) in described
    assert not paths[NEW]["get"].get("deprecated")
    for entry in DEPRECATED:  # no entry for a route that is gone, and every successor answers
        assert client.get(entry.path).status_code != 404, entry.path
        assert client.get(entry.successor).status_code != 404, entry.successor


def test_a_sunset_sooner_than_the_policy_allows_is_refused():
    with pytest.raises(ValueError, match="at least 180 days"):
        Deprecated(path="/x", successor="/api/v1/x", since=date(2026, 1, 1), sunset=date(2026, 3, 1), why="-")


def test_the_policy_page_lists_exactly_the_registered_deprecations():
    from helpers import REPO

    page = (REPO / "docs" / "reference" / "api-versioning.md").read_text()
    section = page.split("## Deprecated routes today", 1)[1]
    rows = re.findall(r"^\| `GET ([^`]+)` \| `GET ([^`]+)` \| ([\d-]+) \| ([\d-]+) \|", section, re.M)
    assert rows == [(e.path, e.successor, str(e.since), str(e.sunset)) for e in DEPRECATED]
    example = re.search(r"^Deprecation: @(\d+)$", page, re.M)
    assert example and f"@{example.group(1)}" == dict(DEPRECATED[0].headers())[b"deprecation"].decode()
