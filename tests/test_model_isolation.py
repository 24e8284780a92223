"""A native crash in model code never takes the caller down: models run in a model host process.

`test:segv` runs through the same host machinery as `local:` models and really crashes its host (a NULL
read in C) when the prompt says SEGV; the real small llama.cpp model is driven through its host too, and
killed with SIGSEGV mid-stream. The served app is started for real and must answer a crash with a JSON
error, keep answering, and fail (and fully record) a task whose model crashed.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import textwrap
import time

import httpx
import pytest
from helpers import REPO, served_app

import workbench
from workbench import providers
from workbench.errors import ModelCrashed, StreamInterrupted

pytestmark = pytest.mark.timeout(300)
CRASH = "test:segv"


def _dead(pid: int, timeout: float = 10.0) -> bool:
    """Whether `pid` is gone (or a zombie nobody reaped yet) within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def _script(code: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


# --- (a) the crash model: the real isolation path ---------------------------------------------------


def test_crash_is_a_clear_error_and_the_next_call_gets_a_fresh_host():
    model = providers.get_model(CRASH)
    assert model.complete("hello there").text == "hello there"
    first = model.host()
    with pytest.raises(ModelCrashed) as err:
        model.complete("please SEGV now")
    message = str(err.value)
    assert message.startswith(f"{CRASH} crashed (SIGSEGV) in native code")
    assert "next call starts a fresh one" in message and err.value.http_status == 502
    assert first.proc.returncode == -signal.SIGSEGV  # the host really died of the signal; this process did not
    assert model.complete("still here?").text == "still here?"
    assert model.host().pid != first.pid and model.host().alive


def test_a_non_zero_exit_is_named_too():
    model = providers.get_model(CRASH)
    with pytest.raises(ModelCrashed, match=r"crashed \(exit status 3\)"):
        model.complete("EXIT please")
    assert model.complete("ok").text == "ok"


def test_a_stream_that_dies_midway_raises_the_crash():
    raw = providers.get_model(CRASH).stream("one two SEGV three")
    with pytest.raises(ModelCrashed, match=r"crashed \(SIGSEGV\)"):
        list(raw)
    assert raw.text == "one two"  # what came before the crash was delivered
    # Through the gateway, output already delivered is never resent: the crash is the interruption's cause.
    stream = workbench.get_model(CRASH).stream("alpha beta SEGV gamma", cache=False)
    with pytest.raises(StreamInterrupted) as err:
        list(stream)
    assert isinstance(err.value.__cause__, ModelCrashed) and "crashed (SIGSEGV)" in str(err.value)
    assert err.value.partial == "alpha beta"


def test_the_gateway_does_not_retry_a_crash_on_the_same_model():
    from workbench.gateway import attempts

    model = workbench.get_model(CRASH)
    before = attempts.STATS["recorded"]
    with pytest.raises(ModelCrashed):
        model.complete("SEGV", cache=False)
    assert attempts.STATS["recorded"] - before == 1  # one attempt: no retry reloading and crashing again
    assert model.complete("fine", cache=False).text == "fine"


def test_one_host_is_reused_and_a_call_costs_well_under_a_millisecond_of_pipe():
    model = providers.get_model(CRASH)
    host = model.host()
    times = []
    for _ in range(300):
        t0 = time.perf_counter()
        assert model.count_tokens("abcd" * 8) == 8
        times.append(time.perf_counter() - t0)
    median_ms = statistics.median(times) * 1000
    print(f"model host round trip: median {median_ms:.3f} ms over {len(times)} calls")
    assert median_ms < 5, f"a round trip to the model host takes {median_ms:.2f} ms"
    c = model.complete("Invent", schema={"type": "object", "properties": {"name": {"type": "string"}}})
    assert c.data == {"name": "Invent"}
    assert model.host() is host and host.alive


def test_the_host_dies_with_its_parent():
    parent = _script("""
        from workbench import providers
        print(providers.get_model("test:segv").host().pid, flush=True)
        import time; time.sleep(600)
    """)
    try:
        host_pid = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)  # no atexit, no cleanup: only EOF or the parent check can tell
        assert _dead(host_pid), f"model host {host_pid} outlived its killed parent"
    finally:
        parent.kill()
        parent.communicate()


def test_ctrl_c_stops_the_callers_reply_not_the_host():
    # A terminal's Ctrl-C signals the whole foreground process group: the caller and its host.
    parent = _script("""
        import faulthandler, signal, time
        faulthandler.dump_traceback_later(45, exit=True)  # a hang fails with every thread's stack, not a timeout
        # As in a terminal's foreground job: a run started in the background by a non-interactive shell (CI's
        # `cmd &`) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt at all.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from workbench import providers
        model = providers.get_model("test:segv")
        pid = model.host().pid
        print(pid, flush=True)
        try:
            while True:
                time.sleep(0.01)
                model.complete("busy")
        except KeyboardInterrupt:
            pass
        print(model.complete("after ctrl-c").text, model.host().pid == pid, flush=True)
    """, start_new_session=True)
    try:
        host_pid = int(parent.stdout.readline())
        time.sleep(0.5)
        os.killpg(parent.pid, signal.SIGINT)
        out, err = parent.communicate(timeout=60)
        assert out.strip() == "after ctrl-c True", err
        assert parent.returncode == 0
    finally:
        parent.kill()
    assert _dead(host_pid), "the host must exit when its caller does"


def test_chat_page_shows_the_crash_as_text():
    from dashboards.chat import ChatPage

    page = ChatPage(model=CRASH)

    async def reply(prompt: str) -> list:
        return [item async for item in page.respond(prompt, "You", page.chat)]

    shown = asyncio.run(reply("SEGV here"))
    assert len(shown) == 1 and isinstance(shown[0], str)
    assert f"{CRASH} crashed (SIGSEGV) in native code" in shown[0] and "Traceback" not in shown[0]
    assert "crashed (SIGSEGV)" in page.status.object
    assert asyncio.run(reply("hello again"))[-1] == "hello again"


# --- (b) the real small llama.cpp model through its host ---------------------------------------------


def test_local_model_runs_in_its_host_and_llama_cpp_never_loads_here(test_model):
    # A fresh interpreter, so imports made by other tests cannot hide (or fake) a load in the caller.
    proc = _script(f"""
        import json, statistics, sys, time
        import workbench
        model = workbench.get_model({test_model!r})
        schema = {{"type": "object", "properties": {{"name": {{"type": "string", "maxLength": 20}},
                  "age": {{"type": "integer"}}}}, "required": ["name", "age"]}}
        done = model.complete("Say hi.", max_tokens=8, temperature=0, cache=False)
        stream = model.stream("Count from 1 to 5.", max_tokens=20, temperature=0, cache=False)
        deltas = list(stream)
        person = model.complete("Invent a person as JSON.", schema=schema, max_tokens=60, temperature=0, cache=False)
        # A reader that stops early stops the host's generation (a cancel between tokens) and gets its count,
        # from the provider and through every gateway wrapper (the loop stops answers once they are complete).
        from workbench import providers
        story = providers.get_model({test_model!r}).stream("Write a long story about a lighthouse.", max_tokens=400,
                                                           temperature=0)
        it = iter(story); next(it); next(it); story.close()
        stopped = story.completion.usage
        tale = model.stream("Write a long story about a mill.", max_tokens=400, temperature=0, cache=False)
        for i, _ in enumerate(tale):
            if i == 2:
                break
        gateway_stopped = tale.completion
        host = model.host()
        t0 = time.perf_counter(); model.host(); lookup_ms = (time.perf_counter() - t0) * 1000
        times = []
        for _ in range(50):
            t0 = time.perf_counter(); model.count_tokens("hello world"); times.append(time.perf_counter() - t0)
        print(json.dumps({{"text": done.text, "tokens": done.usage.output_tokens, "deltas": deltas,
                          "streamed": stream.completion.text, "person": person.data,
                          "stopped_tokens": stopped.output_tokens, "stopped_estimated": stopped.estimated,
                          "gateway_stopped": [gateway_stopped.usage.input_tokens, gateway_stopped.usage.estimated,
                                              gateway_stopped.cost_usd is not None], "tokens_hello": model.count_tokens("hello world"),
                          "load_s": host.load_s, "same_host": host is model.host(), "host_pid": host.pid,
                          "count_ms": statistics.median(times) * 1000, "lookup_ms": lookup_ms,
                          "llama_cpp_loaded": "llama_cpp" in sys.modules}}))
    """)
    try:
        out, err = proc.communicate(timeout=280)
    finally:
        proc.kill()  # its host follows it (EOF on the host's stdin)
    assert proc.returncode == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    print({k: result[k] for k in ("load_s", "count_ms", "lookup_ms")})
    assert result["llama_cpp_loaded"] is False
    assert result["text"] and 0 < result["tokens"] <= 8
    assert len(result["deltas"]) > 1 and "".join(result["deltas"]) == result["streamed"]
    assert isinstance(result["person"]["name"], str) and isinstance(result["person"]["age"], int)
    assert result["tokens_hello"] == 2 and result["same_host"]
    assert 2 <= result["stopped_tokens"] <= 6 and not result["stopped_estimated"]
    tokens_in, estimated, priced = result["gateway_stopped"]
    assert tokens_in > 0 and not estimated and priced
    assert _dead(result["host_pid"]), "the host must exit with its caller"


def test_local_model_killed_mid_stream_is_a_clear_error_then_works(test_model):
    model = providers.get_model(test_model)
    stream = model.stream("Write a long story about the sea.", max_tokens=200, temperature=0)
    host = model.host()
    got = []
    with pytest.raises(ModelCrashed) as err:
        for delta in stream:
            got.append(delta)
            if len(got) == 2:
                os.kill(host.pid, signal.SIGSEGV)  # what a bad llama.cpp build does to itself in decode
    assert len(got) >= 2
    message = str(err.value)
    assert message.startswith(f"{test_model} crashed (SIGSEGV) in llama.cpp")
    assert "workbench doctor" in message and "make llama-rebuild" in message
    c = model.complete("Say ok.", max_tokens=3, temperature=0)
    assert c.usage.output_tokens > 0 and model.host().pid != host.pid
    assert "llama_cpp" not in sys.modules


def test_a_llama_cpp_that_crashes_on_load_is_a_clear_error_in_the_cli(test_model, tmp_path):
    # An environment whose `import llama_cpp` dies of a real SIGSEGV, as a build that does not fit the CPU
    # can: the host (which alone imports it) dies, the CLI prints one error line with the fix and exits 1.
    fake = tmp_path / "crash" / "llama_cpp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n")
    proc = subprocess.run([sys.executable, "-m", "workbench", "ask", "Say hi", "--model", test_model], cwd=REPO,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(fake.parent)})
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert f"{test_model} crashed (SIGSEGV) in llama.cpp while loading the model" in last, proc.stderr
    assert "make llama-rebuild" in last and "Traceback" not in proc.stderr
    assert "Segmentation fault" not in proc.stderr  # the caller never died of it


# --- (c) end to end through the served app ---------------------------------------------------------


@pytest.fixture(scope="module")
def app():
    with served_app("isolation", WORKBENCH_MODEL=CRASH) as served:
        yield served


def _wait_task(base: str, task_id: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        task = httpx.get(f"{base}/api/v1/tasks/{task_id}", timeout=30).json()
        if task["status"] in ("completed", "failed", "cancelled"):
            return task
        assert time.monotonic() < deadline, task
        time.sleep(0.2)


def test_served_chat_answers_a_crash_with_a_json_error_and_keeps_serving(app):
    url = f"{app.url}/v1/chat/completions"
    body = {"model": CRASH, "messages": [{"role": "user", "content": "crash SEGV now"}]}
    r = httpx.post(url, json=body, timeout=60)
    assert r.status_code == 502, r.text
    assert r.json()["error"]["message"].startswith(f"{CRASH} crashed (SIGSEGV)")
    assert r.json()["error"]["code"] == "model_crashed"
    # A stream that crashes before its first token: a real status and a JSON body.
    first = [{"role": "user", "content": "SEGV before any word"}]
    r = httpx.post(url, json={**body, "stream": True, "messages": first}, timeout=60)
    assert r.status_code == 502 and "crashed (SIGSEGV)" in r.json()["error"]["message"]
    # One that crashes mid-way: the status line is sent, so the error comes in-band, then the stream ends.
    midway = {**body, "stream": True, "messages": [{"role": "user", "content": "one two SEGV three"}]}
    with httpx.stream("POST", url, json=midway, timeout=60) as r:
        lines = [line for line in r.iter_lines() if line.startswith("data: ")]
    assert r.status_code == 200
    assert "crashed (SIGSEGV)" in json.loads(lines[-1].removeprefix("data: "))["error"]["message"]
    assert httpx.get(f"{app.url}/health", timeout=60).status_code == 200
    assert app.proc.poll() is None
    ok = httpx.post(url, json={**body, "messages": [{"role": "user", "content": "still there?"}]}, timeout=60)
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "still there?"


def test_served_task_whose_model_crashes_fails_with_the_reason_and_every_event_stored(app):
    r = httpx.post(f"{app.url}/api/v1/tasks", json={"prompt": "Summarise SEGV please", "mode": "single"}, timeout=60)
    assert r.status_code == 201, r.text
    task = _wait_task(app.url, r.json()["id"])
    assert task["status"] == "failed" and task["attempts"] == 0  # the worker lived: no worker-death retry
    # the crash reason, inside the gateway's word on a stream that broke after a few words were delivered
    assert f"{CRASH} crashed (SIGSEGV)" in task["error"]
    events = httpx.get(f"{app.url}/api/v1/tasks/{task['id']}/events", timeout=60).json()
    # The routing call that classifies the task answers from its schema alone; the body's call crashes.
    calls = [e for e in events if e["kind"] == "llm_call" and e["agent"] != "router"]
    assert calls and all("ModelCrashed" in e["error"] and "crashed (SIGSEGV)" in e["error"] for e in calls)
    steps = [e for e in events if e["kind"] == "agent_step" and e["error"]]
    assert steps and all("crashed (SIGSEGV)" in e["error"] for e in steps)
    statuses = [e["payload"]["to"] for e in events if e["kind"] == "status"]
    assert statuses == ["pending", "queued", "processing", "failed"]
    assert events[-1]["kind"] == "status" and events[-1]["payload"]["to"] == "failed"  # nothing after it
    # Every span of the task was written: each llm_call's parent span is an agent_step that was stored.
    assert {e["parent_span_id"] for e in calls} <= {e["span_id"] for e in steps}
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    again = httpx.post(f"{app.url}/api/v1/tasks", json={"prompt": "Say hello", "mode": "single"}, timeout=60)
    done = _wait_task(app.url, again.json()["id"])
    assert done["status"] == "completed" and done["result"]["answer"] == "Say hello"
    assert app.proc.poll() is None and httpx.get(f"{app.url}/health?quick=1", timeout=30).status_code == 200


def test_served_agents_task_whose_model_crashes_fails_with_the_reason(app):
    # The default mode: the Director's routing and planning calls answer from their schemas alone (the crash
    # model crashes only where it writes the prompt's words), then the specialist's call crashes.
    r = httpx.post(f"{app.url}/api/v1/tasks", json={"prompt": "Explain SEGV please"}, timeout=60)
    assert r.status_code == 201, r.text
    task = _wait_task(app.url, r.json()["id"])
    assert task["status"] == "failed" and "ModelCrashed: test:segv crashed (SIGSEGV)" in (task["error"] or ""), task
    events = httpx.get(f"{app.url}/api/v1/tasks/{task['id']}/events", timeout=60).json()
    calls = [e for e in events if e["kind"] == "llm_call"]
    assert {e["agent"] for e in calls} >= {"router", "general"}
    crashed = [e for e in calls if e["agent"] not in ("router", "director")]  # schema-only answers survive
    assert crashed and all("crashed (SIGSEGV)" in (e["error"] or "") for e in crashed), [(e["agent"], e["error"]) for e in calls]
    assert events[-1]["kind"] == "status" and events[-1]["payload"]["to"] == "failed"
    assert app.proc.poll() is None
