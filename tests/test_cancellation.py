"""A cancel is read from the task's row; a row that cannot be read (Postgres away) is not a cancel: the task
goes on, and the store is not asked again for a few seconds, so each model step does not wait on it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from helpers import REPO, home_dir

SCRIPT = textwrap.dedent("""
    import time
    from pathlib import Path
    from workbench.store import open_store, postgres as embedded
    from workbench.tasks import cancellation

    store = open_store()
    with store.connection() as conn:
        task_id = str(conn.execute("INSERT INTO tasks (prompt, status) VALUES ('x', 'cancelled') "
                                   "RETURNING id").fetchone()[0])
    print("while the store answers:", cancellation.is_cancelled(task_id))
    embedded.stop(Path(store.home) / "postgres")
    t = time.monotonic()
    print("store away:", cancellation.is_cancelled(task_id), f"{time.monotonic() - t:.1f}")
    t = time.monotonic()
    print("asked again at once:", cancellation.is_cancelled(task_id), f"{time.monotonic() - t:.1f}")
""")


def test_a_status_that_cannot_be_read_is_not_a_cancel():
    import os
    import shutil

    from workbench.store import postgres as embedded

    home = home_dir("wb-cancel-")  # outside pytest's basetemp, like every embedded Postgres of the suite
    try:
        out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO, env={**os.environ, "WORKBENCH_HOME": str(home)},
                             capture_output=True, text=True, timeout=180)
    finally:
        embedded.stop(home / "postgres")
        shutil.rmtree(home, ignore_errors=True)
    lines = dict(line.split(": ", 1) for line in out.stdout.splitlines() if ": " in line)
    assert lines.get("while the store answers") == "True", out.stdout + out.stderr[-2000:]
    away, waited = lines["store away"].split()
    assert away == "False" and float(waited) < 10, lines  # a 2 s wait for a connection, not the pool's 30 s
    again, waited = lines["asked again at once"].split()
    assert again == "False" and float(waited) < 0.5, lines  # the store is not asked again for a few seconds
