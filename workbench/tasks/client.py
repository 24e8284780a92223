"""How the CLI reaches tasks: through the running server's REST API when `workbench serve` is up,
otherwise through the task API in this process (attaching to or starting the embedded Postgres, and a
LocalCluster only when a task must run here). Both backends expose the same small interface and return
the task API's typed results.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from workbench.config import get_settings
from workbench.errors import WorkbenchError
from workbench.tasks import states
from workbench.tasks.records import NewTask, Task, TaskPage


class ApiError(WorkbenchError):
    def __init__(self, message: str, status: int):
        self.http_status = status
        super().__init__(message)


class HttpBackend:
    """Talks to a running `workbench serve`."""

    def __init__(self, base: str):
        self.base = base.rstrip("/")
        key = get_settings().api_key
        headers = {"X-API-Key": key.get_secret_value()} if key else {}
        self.http = httpx.Client(base_url=self.base + "/api/v1", headers=headers, timeout=60)

    def _call(self, method: str, path: str, **kwargs) -> Any:
        r = self.http.request(method, path, **kwargs)
        if r.status_code >= 400:
            try:
                detail = r.json()
                message = detail.get("error") or json.dumps(detail.get("detail"))
            except ValueError:
                message = r.text
            raise ApiError(message, r.status_code)
        return r.json() if r.content else None

    def create(self, new: NewTask, wait: bool) -> Task:
        return Task.model_validate(self._call("POST", "/tasks", json=new.model_dump(mode="json")))

    def list(self, status: str | None, limit: int) -> TaskPage:
        params = {k: v for k, v in {"status": status, "limit": limit}.items() if v}
        return TaskPage.model_validate(self._call("GET", "/tasks", params=params))

    def get(self, task_id: str) -> Task:
        return Task.model_validate(self._call("GET", f"/tasks/{task_id}"))

    def cancel(self, task_id: str) -> Task:
        return Task.model_validate(self._call("POST", f"/tasks/{task_id}/cancel"))

    def events(self, task_id: str, after: int = 0) -> list[dict]:
        return self._call("GET", f"/tasks/{task_id}/events", params={"after": after})

    def approve(self, task_id: str, plan: dict | None = None) -> Task:
        return Task.model_validate(self._call("POST", f"/tasks/{task_id}/approve", json={"plan": plan, "by": "cli"}))

    def follow(self, task_id: str, after: int = 0) -> Iterator[dict]:
        """Events after seq `after` as they happen, over the WebSocket; ends when the task rests."""
        from websockets.sync.client import connect

        url = self.base.replace("http", "ws", 1) + f"/api/v1/tasks/{task_id}/stream?after={after}"
        key = get_settings().api_key
        headers = {"X-API-Key": key.get_secret_value()} if key else None
        with connect(url, additional_headers=headers, open_timeout=30) as ws:
            for message in ws:
                data = json.loads(message)
                if "error" in data:
                    raise ApiError(data["error"], 404)
                yield data["event"]

    def close(self) -> None:
        self.http.close()


class LocalBackend:
    """No server running: the task API on this process's store; a LocalCluster only to run a task here."""

    def __init__(self):
        from workbench.store import open_store
        from workbench.tasks.api import TaskApi
        from workbench.tasks.service import TaskService

        self.store = open_store()
        self.service = TaskService(self.store)
        self.tasks = TaskApi(self.service)  # queues nothing until runner() starts one
        self._runner = None

    def runner(self):
        if self._runner is None:
            from workbench import cluster
            from workbench.store.sync import start_background_sync
            from workbench.tasks.api import TaskApi
            from workbench.tasks.runner import TaskRunner

            self._runner = TaskRunner(cluster.get_client(), self.service, reconnect=cluster.reconnect)
            self.tasks = TaskApi(self.service, self._runner)
            # This process owns the analytics copy while it runs tasks (as the server does when it is
            # up): the Data specialist reads the snapshot it publishes.
            self._sync = start_background_sync(self.store)
        return self._runner

    def create(self, new: NewTask, wait: bool) -> Task:
        if wait:  # run it here: created and queued in one transaction, committed while Dask dispatches it
            self.runner()
        return self.tasks.create_and_submit(new)

    def list(self, status: str | None, limit: int) -> TaskPage:
        return self.tasks.list(status, limit)

    def get(self, task_id: str) -> Task:
        return self.tasks.get(task_id)

    def cancel(self, task_id: str) -> Task:
        return self.tasks.cancel(task_id)

    def events(self, task_id: str, after: int = 0) -> list[dict]:
        return self.tasks.events(task_id, after)

    def approve(self, task_id: str, plan: dict | None = None) -> Task:
        self.runner()  # the approved plan runs here
        return self.tasks.approve(task_id, plan, by="cli")

    def follow(self, task_id: str, after: int = 0) -> Iterator[dict]:
        last = after
        while True:
            for event in self.tasks.events(task_id, last):
                last = event["seq"]
                yield event
                if event["kind"] == "status" and event["payload"].get("to") in states.RESTING:
                    return
            if self.tasks.get(task_id).status in states.RESTING and not self.tasks.events(task_id, last):
                return
            time.sleep(0.2)

    def close(self) -> None:
        from workbench import cluster
        from workbench.store import close_store

        if self._runner is not None:
            self._sync.stop()
            cluster.close_client()
        close_store()


def server_url() -> str | None:
    """The running server's URL, if one answers /health quickly."""
    s = get_settings()
    url = f"http://{s.host if s.host not in ('0.0.0.0', '::') else '127.0.0.1'}:{s.port}"
    with contextlib.suppress(httpx.HTTPError, ValueError):
        r = httpx.get(url + "/health?quick=1", timeout=1.5)
        if r.status_code == 200 and r.json().get("home") == str(s.home):  # ours, not another workbench's
            return url
    return None


@contextlib.contextmanager
def backend() -> Iterator[HttpBackend | LocalBackend]:
    url = server_url()
    b = HttpBackend(url) if url else LocalBackend()
    try:
        yield b
    finally:
        b.close()
