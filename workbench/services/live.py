"""Live event fan-out: ONE Postgres LISTEN connection per server process, many subscribers.

The store's trigger NOTIFYs `workbench_events` with {"task_id", "max_seq", "n"} after each insert
statement. Subscribers (WebSockets, dashboards) register interest in a task (or in everything) and are
woken with the newest seq; they then read `seq > last_seen` themselves. Nothing polls the database in a
loop, and a thousand open tabs share one LISTEN connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict

import psycopg

log = logging.getLogger(__name__)
CHANNEL = "workbench_events"
ALL = "*"


class EventHub:
    def __init__(self, conninfo: str):
        self.conninfo = conninfo
        self._subscribers: dict[str, set[asyncio.Queue]] = defaultdict(set)
        self._task: asyncio.Task | None = None
        self.connected = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.connected.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    @contextlib.contextmanager
    def subscribe(self, task_id: str = ALL):
        """A queue that receives the newest seq whenever events for `task_id` (or any task) are inserted."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=1000)
        self._subscribers[task_id].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[task_id].discard(queue)

    def _publish(self, task_id: str | None, max_seq: int) -> None:
        for key in (task_id or "", ALL):
            for queue in list(self._subscribers.get(key, ())):
                if queue.full():  # a slow reader only needs the newest seq: drop the oldest wake-up
                    with contextlib.suppress(asyncio.QueueEmpty):
                        queue.get_nowait()
                queue.put_nowait(max_seq)

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.conninfo, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.connected.set()
                    backoff = 0.5
                    # Wake everyone once after (re)connecting: they may have missed notifications.
                    for key in list(self._subscribers):
                        self._publish(None if key == ALL else key, 0)
                    async for note in conn.notifies():
                        data = json.loads(note.payload)
                        self._publish(data.get("task_id"), int(data.get("max_seq") or 0))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Postgres restarted or unreachable: keep trying, tell the log once
                self.connected.clear()
                log.warning("event hub lost its LISTEN connection (%s); retrying in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 4)  # "recovers within a few seconds" once Postgres is back
