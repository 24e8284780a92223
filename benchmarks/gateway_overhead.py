"""Gateway overhead: (a) in-process, the whole wrapper stack vs the bare instant model; (b) HTTP, an instant
OpenAI-compatible mock upstream on 127.0.0.1 called directly vs through our /v1/chat/completions (and
through the LiteLLM proxy, same run, when its throwaway venv exists); (c) throughput at 50 concurrent clients.

Overhead = p50 (or p99) of a path minus that of the direct/bare path measured in the same run, with
requests interleaved in blocks so drift hits every path alike. Every request carries a distinct prompt,
so the response cache misses (the realistic path: key, lookup, store).
Usage: python benchmarks/gateway_overhead.py [--calls 20000] [--requests 3000] [--concurrent 50]
LiteLLM: python3.11 -m venv /tmp/litellm-venv && /tmp/litellm-venv/bin/pip install 'litellm[proxy]==1.108.7'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import save, table

LITELLM = Path("/tmp/litellm-venv/bin/litellm")
BEARER = "sk-" + secrets.token_hex(32)  # the LiteLLM proxy's master key; our endpoint and the mock accept any
REPLY = json.dumps({"id": "chatcmpl-mock", "object": "chat.completion", "created": 0, "model": "bench",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}).encode()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


# --- servers (each runs in its own process) -----------------------------------------------------


async def mock_app(scope, receive, send):
    """The instant upstream: raw ASGI, fixed answer."""
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(REPLY)).encode())]})
    await send({"type": "http.response.body", "body": REPLY})


def serve_mock(port: int) -> None:
    import uvicorn

    uvicorn.run(mock_app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


def serve_gateway(port: int, variant: str) -> None:
    """Our endpoint, served exactly like `workbench serve` does (variant "app"), or the router alone."""
    import uvicorn

    import workbench.gateway
    from workbench.gateway.budget import BudgetModel
    from workbench.gateway.logged import LoggedModel
    from workbench.gateway.stack import compose, layers
    from workbench.testing import FunctionModel, echo

    if not any(isinstance(m, BudgetModel) for m in layers(workbench.gateway.build(FunctionModel(echo)))):
        # until gateway/__init__.build() composes the whole stack itself, use the call proposed for it
        workbench.gateway.build = lambda model: LoggedModel(compose(model))
    if variant == "app":
        from workbench.server.app import create_app

        app = create_app()
    else:
        from fastapi import FastAPI

        from workbench.server.openai_routes import router

        app = FastAPI()
        app.include_router(router)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", ws="websockets")


def start(cmd: list[str], url: str, env: dict, body: bytes, timeout: float = 180) -> subprocess.Popen:
    import httpx

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited: {proc.stdout.read()[-2000:]}")
        try:
            if httpx.post(url, content=body, headers={"content-type": "application/json",
                                                      "authorization": f"Bearer {BEARER}"}, timeout=5).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    proc.kill()
    raise TimeoutError(f"{cmd} did not answer {url} within {timeout} s")


# --- (a) in-process ------------------------------------------------------------------------------


def inprocess(calls: int, block: int = 1000) -> list[dict]:
    """Phase 1 without a store: bare vs the stack (cache miss, cache hit). Phase 2 with a real store open:
    bare vs LoggedModel(stack), every llm_call and llm_attempt event queued to the batched writer."""
    from workbench.gateway import budget
    from workbench.gateway.stack import compose
    from workbench.testing import FunctionModel

    def instant(messages, options):
        return "ok"

    budget.set_limit("agent", "bench", 1e9)  # budgets active: estimate, reserve and settle on every call
    hit = compose(FunctionModel(instant, name="instant-hit"), fallbacks=[])
    phase1 = {"bare FunctionModel": FunctionModel(instant, name="instant"),
              "full stack, cache miss": compose(FunctionModel(instant, name="instant"), fallbacks=[]),
              "full stack, cache hit": lambda prompt: hit.complete("same prompt")}
    rows = _timed(phase1, calls, block, "a in-process")
    logged = _logged_stack(instant)
    if logged is not None:
        phase2 = {"bare FunctionModel (store open)": FunctionModel(instant, name="instant2"),
                  "LoggedModel(full stack), store open": logged}
        rows += _timed(phase2, calls, block, "a in-process")
    return rows


def _timed(paths: dict, calls: int, block: int, part: str) -> list[dict]:
    from workbench.gateway import attempts

    calls_of = {name: (m if callable(m) and not hasattr(m, "complete") else m.complete) for name, m in paths.items()}
    times: dict[str, list[float]] = {name: [] for name in paths}
    names = list(paths)
    with attempts.caller(agent="bench"):
        for name, call in calls_of.items():  # warm-up
            for i in range(500):
                call(f"warm {name} {i}")
        for b in range(calls // block):
            for name in names[b % len(names):] + names[:b % len(names)]:
                call, bucket = calls_of[name], times[name]
                for i in range(block):
                    prompt = f"q {b} {i}"
                    t0 = time.perf_counter_ns()
                    call(prompt)
                    bucket.append((time.perf_counter_ns() - t0) / 1e6)
    base = times[names[0]]
    return [{"part": part, "path": name, "n": len(v), "p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99),
             "overhead_p50_ms": pct(v, 0.5) - pct(base, 0.5), "overhead_p99_ms": pct(v, 0.99) - pct(base, 0.99)}
            for name, v in times.items()]


def _logged_stack(fn):
    """Stack with the LoggedModel and a real store open (events go to its batched writer), when both exist."""
    try:
        from workbench.gateway.logged import LoggedModel
        from workbench.gateway.stack import compose
        from workbench.store import open_store
        from workbench.testing import FunctionModel

        open_store()
    except Exception as exc:  # say why the row is missing instead of failing the whole benchmark
        print(f"(no logged row: {type(exc).__name__}: {exc})", file=sys.stderr)
        return None
    return LoggedModel(compose(FunctionModel(fn, name="instant-logged"), fallbacks=[]))


# --- (b) sequential HTTP and (c) throughput ---------------------------------------------------------


def body(model: str, i: int) -> bytes:
    return json.dumps({"model": model, "messages": [{"role": "user", "content": f"ping {i}"}],
                       "max_tokens": 16}).encode()


def sequential(paths: dict[str, tuple[str, str]], requests: int, block: int = 100) -> dict[str, list[float]]:
    """Sequential keep-alive requests, interleaved in blocks. Besides the HTTP paths, the provider we proxy
    through (our openai provider = the official openai SDK) is timed calling the mock directly, to split
    our endpoint's overhead into the server hop and the outbound SDK call."""
    import httpx

    from workbench import providers

    headers = {"content-type": "application/json", "authorization": f"Bearer {BEARER}"}
    sdk = providers.get_model("openai:bench")
    lat: dict[str, list[float]] = {name: [] for name in [*paths, "openai SDK (our provider) direct to mock",
                                                         "openai SDK alone, create()", "openai SDK alone, raw response"]}
    with httpx.Client(timeout=30) as client:
        calls = {name: (lambda i, url=url, model=model: client.post(url, content=body(model, i), headers=headers)
                        .raise_for_status()) for name, (url, model) in paths.items()}
        calls["openai SDK (our provider) direct to mock"] = lambda i: sdk.complete(f"ping {i}", max_tokens=16)
        # The SDK alone, to split the provider's share into the SDK's and ours; its raw response skips
        # building the response's pydantic models.
        from openai import OpenAI

        bare = OpenAI(base_url=paths["direct to mock"][0].rsplit("/chat/", 1)[0], api_key="sk-bench", max_retries=0)
        request = {"model": "bench", "max_tokens": 16}
        calls["openai SDK alone, create()"] = lambda i: bare.chat.completions.create(
            messages=[{"role": "user", "content": f"ping {i}"}], **request)
        calls["openai SDK alone, raw response"] = lambda i: json.loads(bare.chat.completions.with_raw_response.create(
            messages=[{"role": "user", "content": f"ping {i}"}], **request).text)
        names = list(calls)
        for name, call in calls.items():  # warm-up: connections, lazy imports, caches
            for i in range(200):
                call(-i - 1)
        n = 0
        for b in range(requests // block):
            for name in names[b % len(names):] + names[:b % len(names)]:
                call, bucket = calls[name], lat[name]
                for _ in range(block):
                    n += 1
                    t0 = time.perf_counter_ns()
                    call(n)
                    bucket.append((time.perf_counter_ns() - t0) / 1e6)
    return lat


async def _throughput(url: str, model: str, total: int, concurrency: int) -> tuple[float, int]:
    """`concurrency` keep-alive connections posting `total` requests between them, as fast as each answer
    comes back. The client is plain asyncio streams writing HTTP/1.1 by hand (as wrk does), not httpx: an
    httpx AsyncClient tops out near a few hundred requests a second on one core, which would measure the
    client instead of the server."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    head = (f"POST {parts.path} HTTP/1.1\r\nhost: {parts.hostname}:{parts.port}\r\ncontent-type: application/json\r\n"
            f"authorization: Bearer {BEARER}\r\ncontent-length: ").encode()
    counter = iter(range(total))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            for i in counter:
                payload = body(model, 10_000_000 + i)
                writer.write(head + str(len(payload)).encode() + b"\r\n\r\n" + payload)
                status_line = await reader.readline()
                length, chunked = 0, False
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    chunked |= name.lower() == b"transfer-encoding" and b"chunked" in value.lower()
                if not chunked:
                    await reader.readexactly(length)
                while chunked and (size := int((await reader.readline()).strip() or b"0", 16)):
                    await reader.readexactly(size + 2)  # the chunk and its CRLF
                if chunked:
                    await reader.readline()  # the CRLF after the last, empty chunk
                errors += status_line.split()[1] != b"200"
        except (OSError, asyncio.IncompleteReadError) as exc:  # counted and reported, not fatal
            errors += 1
            print(f"throughput {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - t0), errors


def _run_async(coro):
    """On uvloop when it is installed (uvicorn's own loop on the servers' side), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def http_part(requests: int, concurrency: int, burst: int, with_litellm: bool) -> tuple[list[dict], dict]:
    notes: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    env = {**os.environ, "WORKBENCH_HOME": str(tmp / "home"), "OPENAI_API_KEY": "sk-bench",
           "WORKBENCH_MODEL": "test:echo", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    mock_port, app_port, router_port, litellm_port = (free_port() for _ in range(4))
    mock = f"http://127.0.0.1:{mock_port}/v1"
    env["WORKBENCH_OPENAI_BASE_URL"] = mock
    me = [sys.executable, str(Path(__file__).resolve())]
    procs = [start([*me, "_mock", str(mock_port)], f"{mock}/chat/completions", env, body("bench", 0))]
    paths = {"direct to mock": (f"{mock}/chat/completions", "bench")}
    try:
        procs.append(start([*me, "_gateway", str(app_port), "app"], f"http://127.0.0.1:{app_port}/v1/chat/completions",
                           env, body("openai:bench", 0)))
        paths["workbench serve app /v1"] = (f"http://127.0.0.1:{app_port}/v1/chat/completions", "openai:bench")
        procs.append(start([*me, "_gateway", str(router_port), "router"],
                           f"http://127.0.0.1:{router_port}/v1/chat/completions", env, body("openai:bench", 0)))
        paths["openai_routes alone /v1"] = (f"http://127.0.0.1:{router_port}/v1/chat/completions", "openai:bench")
        # the same server answering from test:echo: one HTTP hop like "direct", no outbound call
        paths["openai_routes alone, test:echo"] = (f"http://127.0.0.1:{router_port}/v1/chat/completions", "test:echo")
        if with_litellm and LITELLM.exists():
            cfg = tmp / "litellm.yaml"
            cfg.write_text(f"model_list:\n  - model_name: bench\n    litellm_params:\n      model: openai/bench\n"
                           f"      api_base: {mock}\n      api_key: sk-bench\n")
            lenv = {**env, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False",
                    "LITELLM_LOG": "ERROR", "LITELLM_MASTER_KEY": BEARER}
            procs.append(start([str(LITELLM), "--config", str(cfg), "--host", "127.0.0.1", "--port",
                                str(litellm_port), "--num_workers", "1"],
                               f"http://127.0.0.1:{litellm_port}/v1/chat/completions", lenv, body("bench", 0)))
            paths["LiteLLM proxy 1.108.7"] = (f"http://127.0.0.1:{litellm_port}/v1/chat/completions", "bench")
        else:
            notes["litellm"] = "not run: /tmp/litellm-venv missing (see the module docstring)" if with_litellm else "off"
        os.environ.update(OPENAI_API_KEY="sk-bench", WORKBENCH_OPENAI_BASE_URL=mock)
        from workbench.config import reload_settings

        reload_settings()
        lat = sequential(paths, requests)
        base = lat["direct to mock"]
        rows = [{"part": "b http sequential", "path": name, "n": len(v), "p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99),
                 "overhead_p50_ms": pct(v, 0.5) - pct(base, 0.5), "overhead_p99_ms": pct(v, 0.99) - pct(base, 0.99)}
                for name, v in lat.items()]
        for name, (url, model) in paths.items():
            if "test:echo" in name:
                continue
            rps, errors = _run_async(_throughput(url, model, burst, concurrency))
            rows.append({"part": f"c throughput x{concurrency}", "path": name, "n": burst,
                         "req_per_s": rps, "errors": errors})
        return rows, notes
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrent", type=int, default=50)
    ap.add_argument("--burst", type=int, default=1000, help="requests per path in the throughput part")
    ap.add_argument("--no-litellm", action="store_true")
    ap.add_argument("--skip-http", action="store_true")
    args = ap.parse_args()
    os.environ.setdefault("WORKBENCH_HOME", tempfile.mkdtemp(prefix="gw-bench-home-"))
    load_start = os.getloadavg()  # a shared 2-core machine: say how busy it was
    rows = inprocess(args.calls)
    notes: dict = {}
    if not args.skip_http:
        http_rows, notes = http_part(args.requests, args.concurrent, args.burst, not args.no_litellm)
        rows += http_rows
    notes["load_average_start"], notes["load_average_end"] = load_start, os.getloadavg()
    cols = ["part", "path", "n", "p50_ms", "p99_ms", "overhead_p50_ms", "overhead_p99_ms", "req_per_s", "errors"]
    print(table(rows, cols))
    for k, v in notes.items():
        print(f"{k}: {v}")
    print(save("gateway_overhead", rows, notes=notes, goals={"inprocess_overhead_p50_ms": 0.3,
                                                           "http_overhead_p50_ms": 0.5}))
    try:
        from workbench.store import close_store

        close_store()
    except Exception:
        pass


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_mock":
        serve_mock(int(sys.argv[2]))
    elif len(sys.argv) > 3 and sys.argv[1] == "_gateway":
        serve_gateway(int(sys.argv[2]), sys.argv[3])
    else:
        main()
