"""A fault-injecting OpenAI-compatible upstream on 127.0.0.1 (FastAPI + uvicorn in a thread) for gateway tests.

    up = FaultUpstream().start()
    up.plan("m", "429:0.2", "ok")   # the next two requests for model "m": 429 with Retry-After 0.2 s, then an answer
    # point the real openai provider at it: OPENAI_API_KEY=..., WORKBENCH_OPENAI_BASE_URL=up.url

Steps: "ok", "429[:retry_after]", "402", "400", "500", "503", "hang" (answers only after the client gave
up), "drop" (connection cut mid-body), "malformed" (invalid JSON / SSE data), "no_choices",
"break:N" (stream: N content chunks, then the connection is cut). Unplanned requests answer "ok".
The answer is "echo: <last user message>", streamed one word per chunk.
"""

from __future__ import annotations

import asyncio
import collections
import json
import threading
import time

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from helpers import free_port


class _Cut(Response):
    """Promise a body, send part of it, then fail: uvicorn drops the connection (the client sees a cut)."""

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"400")]})
        await send({"type": "http.response.body", "body": b'{"id": "chatcmpl-x", "choi', "more_body": True})
        raise ConnectionAbortedError("fault injection: connection dropped")


class FaultUpstream:
    def __init__(self, hang_s: float = 5.0):
        self.hang_s = hang_s
        self.plans: dict[str, collections.deque[str]] = collections.defaultdict(collections.deque)
        self.requests: list[dict] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v1"
        self._release = threading.Event()
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self._chat)
        self.app.get("/v1/models")(lambda: {"object": "list", "data": []})

    def plan(self, model: str, *steps: str) -> FaultUpstream:
        self.plans[model].extend(steps)
        return self

    def count(self, model: str) -> int:
        return sum(1 for r in self.requests if r["model"] == model)

    async def _chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        model = body["model"]
        step = self.plans[model].popleft() if self.plans[model] else "ok"
        name, _, arg = step.partition(":")
        text = "echo: " + next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        if name == "ok":
            return self._stream(body, text, None) if body.get("stream") else JSONResponse(_completion(model, text))
        if name in ("400", "402", "500", "503", "429"):
            headers = {"retry-after": arg} if arg else None
            return JSONResponse({"error": {"message": f"fault injection: HTTP {name}", "type": "fault", "code": name}},
                                status_code=int(name), headers=headers)
        if name == "hang":
            await asyncio.get_running_loop().run_in_executor(None, self._release.wait, self.hang_s)
            return JSONResponse(_completion(model, text))
        if name == "drop":
            return _Cut()
        if name == "malformed":
            if body.get("stream"):
                return StreamingResponse(iter(["data: {not json\n\n"]), media_type="text/event-stream")
            return Response('{"id": "chatcmpl-x", "choices": [', media_type="application/json")
        if name == "no_choices":
            return JSONResponse({**_completion(model, text), "choices": []})
        if name == "break":
            return self._stream(body, text, int(arg or 1))
        raise ValueError(f"unknown fault step {step!r}")

    def _stream(self, body: dict, text: str, cut_after: int | None) -> StreamingResponse:
        model = body["model"]

        def events():
            words = [w + " " for w in text.split(" ")]
            for i, word in enumerate(words):
                if cut_after is not None and i == cut_after:
                    raise ConnectionAbortedError("fault injection: stream cut")
                yield _sse(model, {"content": word}, None)
                time.sleep(0.005)  # separate chunks on the wire
            yield _sse(model, {}, "stop")
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    def start(self) -> FaultUpstream:
        config = uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="critical", lifespan="off",
                                timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("fault upstream did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.should_exit = True
        self.thread.join(10)


def _completion(model: str, text: str) -> dict:
    return {"id": "chatcmpl-fault", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": len(text.split()), "total_tokens": 5 + len(text.split())}}


def _sse(model: str, delta: dict, finish: str | None) -> str:
    chunk = {"id": "chatcmpl-fault", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n"
