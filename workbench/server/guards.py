"""ASGI wrappers that refuse a request before the app sees it: wrong Host, cross-site Origin, oversized body.

They wrap the whole app, so they see every HTTP request and every WebSocket handshake (Starlette runs
`@app.middleware("http")` functions for HTTP only). Each refusal is a 4xx JSON body in the API's shape
(`{"error": message, "type": kind}`; OpenAI's `{"error": {"message", "type"}}` under /v1/) and one log line;
a wrong Host or a cross-site request is also an `access_denied` event (`record_denial`).

- `HostGuard`: the Host header must name this server (DNS rebinding: a page on evil.example whose name
  resolves to 127.0.0.1 would otherwise talk to the workbench with the browser's same-origin rights).
  Allowed: localhost, 127.0.0.1, ::1, the bound host and WORKBENCH_ALLOWED_HOSTS. Else 400.
- `OriginGuard`: a WebSocket handshake or a state-changing request (POST/PUT/PATCH/DELETE) whose Origin
  header is present must come from this server (its Origin's host:port is the Host header) or from
  WORKBENCH_ALLOWED_ORIGINS. Else 403. A body sent to the API (/api/, /v1/) with a Content-Type must be
  JSON (415 otherwise), so a cross-site form or a text/plain fetch, which need no CORS preflight, cannot post
  to it even from a browser that leaves out Origin. (A body without any Content-Type, which API clients send,
  is let through: a browser sends one only with an Origin header, judged above.) No CORS headers are sent.
- `BodyLimit`: the body is counted as it arrives (chunked bodies included) and refused with 413 as soon as it
  passes the limit, without reading the rest; the app gets the body only once it is whole and within it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from workbench.hosts import is_loopback_host

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
API_PREFIXES = ("/api/", "/v1/")


def error_body(path: str, message: str, kind: str) -> dict[str, Any]:
    """The API's error shape for `path`: OpenAI's under /v1/ (its SDKs parse it), the workbench's elsewhere."""
    if path.startswith("/v1/"):
        return {"error": {"message": message, "type": kind}}
    return {"error": message, "type": kind}


def header(scope: Scope, name: str) -> str | None:
    wanted = name.lower().encode()
    for key, value in scope.get("headers") or ():
        if key.lower() == wanted:
            return value.decode("latin-1")
    return None


def client_of(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "?"


async def refuse(scope: Scope, send: Send, status: int, message: str, kind: str,
                 headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Answer `status` with a JSON error body, for an HTTP request or a WebSocket handshake (not yet accepted),
    and log it (what was refused and why; never a credential)."""
    path = scope.get("path", "")
    log.warning("refused %s %s from %s: %d %s", scope.get("method", "WEBSOCKET"), path, client_of(scope), status,
                message)
    body = json.dumps(error_body(path, message, kind)).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    if scope["type"] == "websocket":
        if "websocket.http.response" not in (scope.get("extensions") or {}):
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        prefix = "websocket.http.response"
    else:
        prefix = "http.response"
    await send({"type": f"{prefix}.start", "status": status, "headers": head})
    await send({"type": f"{prefix}.body", "body": body, "more_body": False})


class DenialBudget:
    """At most `limit` access_denied events per client address per `window_s`: a client hammering the
    server with bad keys must not fill the append-only events table. The first event of the next window
    says how many were left out (every refusal still gets its log line)."""

    def __init__(self, limit: int = 30, window_s: float = 60.0):
        self.limit, self.window_s = limit, window_s
        self.windows: dict[str, tuple[float, int, int]] = {}  # address -> (window start, recorded, left out)

    def admit(self, address: str, now: float) -> tuple[bool, int]:
        """(record this one?, how many were left out before it)."""
        start, recorded, left_out = self.windows.get(address, (now, 0, 0))
        carried = 0
        if now - start >= self.window_s:
            start, recorded, carried, left_out = now, 0, left_out, 0
        if recorded >= self.limit:
            self.windows[address] = (start, recorded, left_out + 1)
            return False, 0
        self.windows[address] = (start, recorded + 1, left_out)
        if len(self.windows) > 10_000:  # many addresses: forget the oldest windows
            for key in sorted(self.windows, key=lambda k: self.windows[k][0])[:5_000]:
                del self.windows[key]
        return True, carried


DENIALS = DenialBudget()


def record_denial(request: Scope, status: int, reason: str, **fields: Any) -> None:
    """One `access_denied` event for a refused request: path, method, client, status, reason and `fields`
    (the auth guard adds the key's name and scope; never key material), within DENIALS' budget."""
    import time

    from workbench import telemetry

    client = request.get("client")
    record, left_out = DENIALS.admit(client[0] if client else "?", time.monotonic())
    if not record:
        return
    extra = {"left_out_before": left_out} if left_out else {}
    try:
        telemetry.emit("access_denied", task_id=None, error=reason,
                       payload={"path": request.get("path", ""), "method": request.get("method", "WEBSOCKET"),
                                "client": client_of(request), "status": status, **fields, **extra})
    except Exception as exc:  # the refusal stands even when the event cannot be kept; the log line says so
        log.warning("could not record an access_denied event: %s", type(exc).__name__)


def host_name(value: str) -> str:
    """The host part of a Host header or netloc, lower-case, without port or IPv6 brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value[1:]
    if value.count(":") == 1:
        return value.split(":", 1)[0]
    return value


def is_loopback(host: str) -> bool:
    return is_loopback_host(host_name(host))


def split_list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


class HostGuard:
    """400 unless the Host header names an allowed host ("*" in `extra` allows any)."""

    def __init__(self, app: ASGIApp, bound_host: str | None = None, extra: Iterable[str] = ()):
        self.app = app
        names = {*LOOPBACK_NAMES, *(host_name(h) for h in extra)}
        if bound_host and bound_host not in ("0.0.0.0", "::"):
            names.add(host_name(bound_host))
        self.any = "*" in names
        self.allowed = frozenset(names)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self.any:
            given = header(scope, "host")
            if given is None or host_name(given) not in self.allowed:
                shown = (given or "(none)")[:100]
                record_denial(scope, 400, f"Host {shown!r} is not allowed")
                await refuse(scope, send, 400, f"Host {shown!r} is not one this server answers to. If it should, add "
                                               f"it to WORKBENCH_ALLOWED_HOSTS (comma-separated).", "HostNotAllowed")
                return
        await self.app(scope, receive, send)


class OriginGuard:
    """403 for a cross-site WebSocket or state-changing request; 415 for a non-JSON body to the API."""

    def __init__(self, app: ASGIApp, extra_origins: Iterable[str] = ()):
        self.app = app
        self.origins = frozenset(o.rstrip("/").lower() for o in extra_origins)

    def same_site(self, scope: Scope, origin: str) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        host = (header(scope, "host") or "").lower()
        return parts.scheme in ("http", "https") and bool(host) and parts.netloc == host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket" or (kind == "http" and scope["method"] in STATE_CHANGING):
            origin = header(scope, "origin")
            if origin is not None and not self.same_site(scope, origin):
                record_denial(scope, 403, f"cross-site request from Origin {origin[:100]!r}")
                await refuse(scope, send, 403, f"Cross-site request refused (Origin {origin[:100]!r}). Use the "
                                               f"pages this server serves, or add that origin to "
                                               f"WORKBENCH_ALLOWED_ORIGINS (comma-separated).", "CrossSiteRequest")
                return
            if kind == "http" and scope["path"].startswith(API_PREFIXES) and self.has_body(scope):
                ctype = header(scope, "content-type")
                ctype = ctype.split(";", 1)[0].strip().lower() if ctype is not None else None
                if ctype is not None and ctype != "application/json":
                    await refuse(scope, send, 415, f"The request body must be JSON: send it with Content-Type: "
                                                   f"application/json (got {ctype!r}).", "UnsupportedMediaType")
                    return
        await self.app(scope, receive, send)

    @staticmethod
    def has_body(scope: Scope) -> bool:
        length = header(scope, "content-length")
        return header(scope, "transfer-encoding") is not None or (length is not None and length.strip() not in ("", "0"))


class BodyLimit:
    """413 once the request body passes `limit` bytes, counted as it arrives; the app gets it whole or never."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    def too_large(self, size: str) -> str:
        return f"The request body is {size} bytes; the limit is {self.limit:,}. Shorten the prompt or refer to a file."

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = header(scope, "content-length")
        if declared and declared.strip().isdigit() and int(declared) > self.limit:
            await refuse(scope, send, 413, self.too_large(f"{int(declared):,}"), "PayloadTooLarge",
                         [(b"connection", b"close")])
            return
        chunks: list[bytes] = []
        total = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away before sending it all: nothing to answer
            chunk = message.get("body", b"")
            total += len(chunk)
            if total > self.limit:
                await refuse(scope, send, 413, self.too_large(f"more than {self.limit:,}"), "PayloadTooLarge",
                             [(b"connection", b"close")])
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect a streaming response waits for

        await self.app(scope, replay, send)
