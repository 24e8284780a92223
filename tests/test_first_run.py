"""A fresh data directory: every page offers the seeded demo and shows an empty state instead of empty charts;
the demo (a real workload of short tasks, here on the deterministic `test:echo` model) starts in the
background from the page's button or `POST /api/v1/demo`, shows its progress, labels its tasks as demo data,
and never runs twice at once. Against the real embedded Postgres and a Dask LocalCluster of processes
(the `stack` of test_dashboards, in its own throwaway WORKBENCH_HOME).
"""

from __future__ import annotations

import threading
import time

import pytest
import test_dashboards
from fastapi import FastAPI
from starlette.testclient import TestClient

pytestmark = pytest.mark.timeout(600)
stack, stack_env = test_dashboards.stack, test_dashboards.stack_env  # the real store + cluster fixtures
KEY = "k-first-run-0123456789"
BASE = "http://127.0.0.1:5006"


def _page_classes():
    from dashboards.anomalies import AnomaliesPage
    from dashboards.costs import CostsPage
    from dashboards.models import ModelsPage
    from dashboards.monitoring import MonitoringPage
    from dashboards.prediction import PredictionPage
    from dashboards.tasks import TasksPage

    return [TasksPage, MonitoringPage, CostsPage, AnomaliesPage, PredictionPage, ModelsPage]


def _wait_finished(timeout: float = 180) -> None:
    from workbench.services import demo

    deadline = time.monotonic() + timeout
    while demo.progress().state == "running":
        assert time.monotonic() < deadline, demo.progress().line
        time.sleep(0.2)


def _count(store, sql: str) -> int:
    with store.connection() as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.fixture(autouse=True)
def no_demo_left():
    from workbench.services import demo

    _wait_finished()
    demo.reset()
    yield
    _wait_finished()
    demo.reset()


def test_a_fresh_store_offers_the_demo_on_every_page_and_shows_no_empty_charts(stack):
    from dashboards.layout import DEMO_HINT

    for cls in _page_classes():
        page = cls()
        page.__panel__()  # lay it out, as a served tab does
        offer = page.offer
        assert offer.layout.visible and offer.button.visible and not offer.button.disabled, cls.__name__
        assert "workbench demo" in offer.text.object and "demo:" in offer.text.object
        assert not offer.progress_bar.visible
        # No chart section is shown on an empty store; an empty state says what will appear and how to fill it.
        sections = [v for v in vars(page).values() if getattr(v, "css_classes", None) == ["data-section"]]
        assert all(not s.visible for s in sections), (cls.__name__, [s.visible for s in sections])
    costs = _page_classes()[2]()
    costs.__panel__()
    assert costs.charts.objects and not costs.charts.visible and costs.empty.visible
    assert DEMO_HINT in costs.empty.object
    monitoring = _page_classes()[1]()
    assert monitoring.empty.visible and "latency per model appear here" in monitoring.empty.object
    models = _page_classes()[5]()
    assert models.health_empty.visible and not models.health_charts.visible
    prediction = _page_classes()[4]()
    assert not prediction.predictor_charts.visible and "this page shows" in prediction.predictor_status.object
    anomalies = _page_classes()[3]()
    assert anomalies.empty.visible and not anomalies.charts.visible


def test_the_button_starts_the_demo_once_shows_progress_and_labels_its_tasks(stack):
    from dashboards.tasks import TasksPage
    from workbench.services import demo

    page, other_tab = TasksPage(), TasksPage()
    page.offer.button.clicks += 1  # as a click does
    assert demo.progress().state == "running"
    assert page.offer.progress_bar.visible and page.offer.button.disabled is True or not page.offer.button.visible
    assert "Demo running" in page.offer.status.object and f"/{demo.progress().total} tasks done" in page.offer.status.object
    other_tab.offer.start()  # a second click, from another tab, while it runs: nothing new starts
    assert "already running" in other_tab.offer.status.object
    _wait_finished()
    p = demo.progress()
    total = len(demo.plan())
    assert (p.state, p.total, p.done, p.completed, p.error) == ("finished", total, total, total - 1, None)
    # One demo's tasks, each labelled as demo data in the stored title, the deliberate failure among them.
    assert _count(stack.store, "SELECT count(*) FROM tasks") == total
    assert _count(stack.store, f"SELECT count(*) FROM tasks WHERE title LIKE '{demo.DEMO_PREFIX}%'") == total
    assert _count(stack.store, "SELECT count(*) FROM tasks WHERE status = 'failed'") == 1
    page.reload()
    assert page.offer.layout.visible and "Demo finished" in page.offer.status.object
    assert page.offer.progress_bar.value == total and not page.offer.button.visible
    assert not page.list_empty.visible


def test_two_starts_at_once_start_one_demo(stack):
    from workbench.services import demo, runtime

    tasks = runtime.current().tasks
    before = _count(stack.store, "SELECT count(*) FROM tasks")
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        try:
            demo.start(tasks, demo.plan(2, failures=False))
            outcomes.append("started")
        except demo.DemoAlreadyRunning as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("started") == 1, outcomes
    assert all("already running" in o for o in outcomes if o != "started")
    _wait_finished()
    assert _count(stack.store, "SELECT count(*) FROM tasks") == before + 2


def _api_app(stack, key: str | None) -> FastAPI:
    """The demo router behind the served app's own guards (app._guard), on the stack's task API."""
    from workbench.config import Settings
    from workbench.server import api_demo, auth
    from workbench.server import app as server_app
    from workbench.services import runtime

    app = FastAPI()
    app.state.tasks = runtime.current().tasks
    app.include_router(auth.router)
    app.include_router(api_demo.router)
    server_app._guard(app, Settings(api_key=key), "127.0.0.1")
    server_app.install_error_handlers(app)
    return app


def test_the_api_refuses_without_the_key_then_starts_once_and_reports_progress(stack):
    from workbench.services import demo

    before = _count(stack.store, "SELECT count(*) FROM tasks")
    client = TestClient(_api_app(stack, KEY), base_url=BASE)
    body = {"tasks": 2, "failures": False}
    refused = client.post("/api/v1/demo", json=body)
    assert refused.status_code == 401 and "error" in refused.json()
    assert client.post("/api/v1/demo", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/api/v1/demo", json=body, headers={"Origin": "http://evil.example",
                                                           "X-API-Key": KEY}).status_code == 403
    assert demo.progress().state == "idle"  # nothing started

    auth_h = {"X-API-Key": KEY}
    started = client.post("/api/v1/demo", json=body, headers=auth_h)
    assert started.status_code == 202, started.text
    assert started.json()["state"] == "running" and started.json()["total"] == 2
    again = client.post("/api/v1/demo", json=body, headers=auth_h)
    assert again.status_code == 409 and "already running" in again.json()["error"]
    bad = client.post("/api/v1/demo", json={"tasks": 0}, headers=auth_h)
    assert bad.status_code == 422
    _wait_finished()
    done = client.get("/api/v1/demo", headers=auth_h).json()
    assert (done["state"], done["done"], done["completed"]) == ("finished", 2, 2), done
    assert "Demo finished: 2/2" in done["line"]
    assert _count(stack.store, "SELECT count(*) FROM tasks") == before + 2


def test_the_cli_and_the_server_share_one_plan():
    from workbench.services import demo

    items = demo.plan(3, "test:echo", failures=True)
    assert [i.model for i in items] == ["test:echo"] * 3 + [demo.FAILING_MODEL]
    assert all(demo.is_demo(i.new_task().title) for i in items)
    assert not demo.is_demo("a user's task")
