"""No event lost: the writer's spill file while Postgres is away, its replay, a full queue, close().

Each test counts events by their ids: every id emitted is in `events` exactly once (0 lost, 0 duplicated).
One embedded Postgres for the module, which the first test stops and starts again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
from helpers import free_port
from test_store import _pg_tmp, pg_home, py, store, wait_line  # noqa: F401  (module fixtures, shared)

from workbench import telemetry
from workbench.errors import EventNotKept, StoreError
from workbench.store import Store
from workbench.store import postgres as embedded
from workbench.store.writer import EventQueueFull, EventWriter

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def home():
    """A home of the test's own for spill files (the module's server lives in pg_home)."""
    d = Path(_pg_tmp()) / "spill-home"
    d.mkdir()
    yield d
    shutil.rmtree(d.parent, ignore_errors=True)


def unreachable() -> str:
    return f"host=127.0.0.1 port={free_port()} dbname=x user=x connect_timeout=1"  # nothing listens there


def ids_in_postgres(store: Store, ids: list[str]) -> dict[str, int]:
    with store.connection() as conn:
        rows = conn.execute("SELECT event_id::text, count(*) FROM events WHERE event_id = ANY(%s::uuid[]) "
                            "GROUP BY 1", (ids,)).fetchall()
    return dict(rows)


def assert_exactly_once(store: Store, ids: list[str]) -> None:
    found = ids_in_postgres(store, ids)
    lost = [i for i in ids if i not in found]
    duplicated = {i: n for i, n in found.items() if n != 1}
    assert (len(lost), len(duplicated)) == (0, 0), f"lost {len(lost)} (e.g. {lost[:3]}), duplicated {duplicated}"


def wait_until(check, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout} s: {what}")
        time.sleep(0.05)


def restart_postgres(pgdata: Path) -> None:
    """Start the embedded server again on the same data directory and socket (what a server restart does)."""
    srv = embedded._servers[Path(pgdata).resolve()]
    with srv._lock:
        srv.ensure_postgres_running()


# --- (a) Postgres stops while events are emitted, then comes back -----------------------------------


def test_postgres_stopped_mid_stream_then_restarted_every_event_lands_exactly_once(store, pg_home):
    writer = EventWriter(store.conninfo, home=pg_home, spill_after_s=0.3, probe_s=0.1)
    tid, ids = str(uuid.uuid4()), []

    def emit(n: int) -> None:
        for _ in range(n):
            ids.append(str(uuid.uuid4()))
            writer.emit("tool_call", task_id=tid, event_id=ids[-1], payload={"i": len(ids)})
            if len(ids) % 50 == 0:
                time.sleep(0.005)  # a steady stream, not one burst

    try:
        emit(1000)
        assert embedded.stop(pg_home / "postgres")  # fast shutdown: the writer's session is cut mid-stream
        emit(2000)
        wait_until(lambda: writer.stats()["offline"], 30, "the writer noticing Postgres is gone")
        emit(1000)  # while offline: straight to the spill file
        assert writer.stats()["spilled"] > 0 and writer.spill.has_rows()
        with pytest.raises(StoreError, match="not yet written"):
            writer.flush(timeout=0.5)  # flush means "in Postgres": it says so rather than pretend
        restart_postgres(pg_home / "postgres")
        emit(1000)
        writer.flush(timeout=120)
    finally:
        writer.close()
    assert writer.stats()["replayed"] > 0 and not writer.spill.path.exists()
    assert len(ids) == 5000
    assert_exactly_once(store, ids)


# --- (b) a process killed with events in its spill file ---------------------------------------------


CHILD = """
    import sys, time, uuid
    from workbench.store.writer import EventWriter
    from pathlib import Path
    writer = EventWriter(sys.argv[1], home=Path(sys.argv[2]), spill_after_s=0.1)
    ids = [str(uuid.uuid4()) for _ in range({n})]
    for i, eid in enumerate(ids):
        writer.emit("tool_call", event_id=eid, payload={{"i": i}})
    while writer.stats()["spilled"] < len(ids):   # on disk, fsync'd
        time.sleep(0.01)
    print("ids", " ".join(ids), flush=True)
    print("spilled", flush=True)
    time.sleep(600)   # SIGKILLed here: no close(), no atexit
"""


def test_sigkilled_process_spill_is_replayed_exactly_once_by_the_next_writer(store, home):
    args, env = py(CHILD.format(n=2000), home)
    proc = subprocess.Popen([*args, unreachable(), str(home)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("ids "), proc.stderr.read()[-3000:]
        ids = line.split()[1:]
        wait_line(proc, "spilled")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    files = list((home / "events-spill").glob("*.jsonl"))
    assert len(files) == 1 and len(files[0].read_bytes().splitlines()) == 2000
    saved = files[0].read_bytes()

    writer = EventWriter(store.conninfo, home=home)  # the next start: replays what the dead process left
    try:
        wait_until(lambda: not files[0].exists(), 60, "the replay of the dead process's spill file")
    finally:
        writer.close()
    assert_exactly_once(store, ids)

    # A replayer killed after its commit, before removing the file: the file is replayed again, adding nothing.
    files[0].write_bytes(saved)
    writer = EventWriter(store.conninfo, home=home)
    try:
        wait_until(lambda: not files[0].exists(), 60, "the second replay")
    finally:
        writer.close()
    assert_exactly_once(store, ids)


def test_old_dead_letter_files_are_replayed_the_same_way(store, home):
    import json

    from workbench.events import Event
    from workbench.store.writer import build_row, row_as_dict

    ids = [str(uuid.uuid4()) for _ in range(20)]
    lines = [json.dumps({"reason": "not written before close()",
                         "event": row_as_dict(build_row(Event(kind="message", event_id=i, payload={"n": n})))})
             for n, i in enumerate(ids)]
    dead = home / "events-unwritten-999999.jsonl"
    dead.write_text("\n".join(lines) + "\n")
    writer = EventWriter(store.conninfo, home=home)
    try:
        wait_until(lambda: not dead.exists(), 60, "the replay of the old dead-letter file")
    finally:
        writer.close()
    assert_exactly_once(store, ids)


# --- (c) a full queue: nothing dropped silently ------------------------------------------------------


def test_full_queue_spills_instead_of_dropping_and_everything_lands_once(store, home):
    """Postgres too slow for the emitters: the queue fills, emitters wait a bounded time, then spill."""
    writer = EventWriter(store.conninfo, home=home, max_queue=50, batch_size=20, full_timeout_s=0.05)
    writer.failpoint = lambda stage: time.sleep(0.2) if stage == "before_commit" else None  # a slow disk
    ids: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for i in range(500):
            eid = str(uuid.uuid4())
            writer.emit("tool_call", event_id=eid, payload={"i": i})  # never raises: waits, or spills
            with lock:
                ids.append(eid)

    threads = [threading.Thread(target=work) for _ in range(2)]
    try:
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        emitting_s = time.monotonic() - started
        writer.failpoint = None
        writer.flush(timeout=120)
    finally:
        writer.close()
    assert writer.stats()["spilled"] > 0, "the queue never filled: the test proves nothing"
    assert emitting_s < 30, "emitters must wait a bounded time, not until Postgres catches up"
    assert len(ids) == 1000
    assert_exactly_once(store, ids)


def test_queue_full_and_spill_unwritable_the_emitter_is_told(home):
    (home / "events-spill").write_text("a file where the spill directory should be")  # the disk refuses
    writer = EventWriter(unreachable(), home=home, max_queue=20, full_timeout_s=0.05, spill_after_s=0.1)
    accepted, refused = 0, []
    try:
        for i in range(200):
            try:
                writer.emit("tool_call", payload={"i": i})
                accepted += 1
            except EventQueueFull as exc:
                refused.append(str(exc))
    finally:
        with pytest.raises(StoreError, match="neither written to Postgres nor saved"):
            writer.close(timeout=0.5)
    assert accepted + len(refused) == 200 and refused
    assert "not dropped silently" in refused[0] and "spill file" in refused[0]


def test_telemetry_emit_raises_when_the_store_cannot_keep_an_event():
    """The sink loop no longer swallows EventNotKept; a body's own error still wins over its span's."""
    def full(event):
        raise EventQueueFull("queue full and spill file unwritable (test)")

    telemetry.add_sink(full)
    try:
        with pytest.raises(EventNotKept, match="unwritable"):
            telemetry.emit("tool_call")
        with pytest.raises(ValueError, match="the body's own") as info, telemetry.span("agent_step"):
            raise ValueError("the body's own error")
        assert any("was not recorded" in note for note in info.value.__notes__)
    finally:
        telemetry.remove_sink(full)


def test_a_closed_store_spills_late_events_for_the_next_one(store, home):
    """An event that reaches the store's sink after close() is saved for the next writer, not dropped."""
    from workbench.events import Event

    late = Store(store.conninfo, home=home, pgdata=None, started_here=False, pool_size=1)
    late.close()
    eid = str(uuid.uuid4())
    late.record(Event(kind="message", event_id=eid))
    assert eid in late.writer.spill.path.read_text()
    late.writer.spill.close()  # as at the process's exit: the lock goes, the next writer may replay it
    writer = EventWriter(store.conninfo, home=home)
    try:
        wait_until(lambda: not late.writer.spill.path.exists(), 60, "the replay of the late event")
    finally:
        writer.close()
    assert_exactly_once(store, [eid])


# --- close() never loses the batch being written ----------------------------------------------------


def test_close_spills_the_batch_stuck_in_a_commit(store, home):
    stuck = threading.Event()

    def hang(stage: str) -> None:
        if stage == "before_commit":
            stuck.set()
            time.sleep(12)  # a commit that does not come back before close() gives up on the thread

    writer = EventWriter(store.conninfo, home=home)
    writer.failpoint = hang
    ids = [str(uuid.uuid4()) for _ in range(100)]
    for eid in ids:
        writer.emit("tool_call", event_id=eid)
    assert stuck.wait(10)
    writer.close(timeout=0.5)  # the thread is inside the commit: its batch is spilled, not lost
    assert writer.stats()["unwritten"] == 100
    replay = EventWriter(store.conninfo, home=home, replay_every_s=0.2)
    try:
        # The stuck commit may still land; the replay then adds nothing: exactly once either way.
        wait_until(lambda: not writer.spill.path.exists() and len(ids_in_postgres(store, ids)) == 100, 60,
                   "the replay of what close() spilled")
    finally:
        replay.close()
    assert_exactly_once(store, ids)
