"""Who may call: the API keys, checked on every HTTP request and every WebSocket handshake, and their scopes.

Keys: WORKBENCH_API_KEY (an admin key, from the environment) and the named keys of `workbench keys`
(workbench.store.api_keys: hashed at rest, each with a scope). With neither, the server is open (and
`workbench serve` refuses to bind beyond loopback). Otherwise a request must carry one of:

- `X-API-Key: <key>` or `Authorization: Bearer <key>` (API clients, the CLI, OpenAI SDKs; on WebSockets too);
- the session cookie a browser gets from the login page: open any page, get sent to `/login`, type the key
  once. The form posts it (same-origin only, see `guards.OriginGuard`) and the answer sets `workbench_session`,
  an HttpOnly, SameSite=Strict cookie holding an HMAC derived from the key (never the key itself), which the
  pages and their Panel WebSockets then send by themselves. Changing or revoking the key ends its sessions.

Scopes (`SCOPE_RULES`, first match wins): `read` for GET and the task stream; `submit` for creating tasks,
/v1 calls, cancelling one's own tasks and Panel sessions (their pages submit, cancel and approve); `admin`
for keys, configuration, deleting tasks and cancelling other keys' tasks (checked in the route, which knows
the owner). `/health` and `/login` stay open; without a key /health says only whether each component is up. A refusal is 401 (no or wrong key) or 403 (scope too small)
with a JSON body, one log line and one `access_denied` event naming the path, the client, the key's name
and the reason, never key material; a browser asking for a page without a credential is redirected to the
login page instead.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import logging
import re
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from workbench.server import guards
from workbench.server.guards import ASGIApp, Receive, Scope, Send, header, refuse
from workbench.store import api_keys

COOKIE = "workbench_session"
OPEN_PATHS = frozenset({"/health", "/login"})
ENV_KEY_NAME = "WORKBENCH_API_KEY"
CALLER = "workbench.caller"  # the ASGI scope entry routes read the caller from (see `caller_of`)
log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

READS = frozenset({"GET", "HEAD", "OPTIONS", "WEBSOCKET"})
ANY = frozenset({"GET", "HEAD", "OPTIONS", "WEBSOCKET", "POST", "PUT", "PATCH", "DELETE"})
# (methods, path pattern, scope needed): the first match decides; nothing matched: read for READS, else submit.
SCOPE_RULES: tuple[tuple[frozenset[str], re.Pattern[str], str], ...] = (
    (ANY, re.compile(r"^/api/v1/(keys|config)(/.*)?$"), "admin"),
    (frozenset({"DELETE"}), re.compile(r"^/api/v1/tasks/[^/]+$"), "admin"),
    (frozenset({"WEBSOCKET"}), re.compile(r"^/api/v1/tasks/[^/]+/stream$"), "read"),
    (frozenset({"WEBSOCKET"}), re.compile(r"^/.+/ws$"), "submit"),  # a Panel session can submit and cancel
)


def needed_scope(method: str, path: str) -> str:
    for methods, pattern, scope in SCOPE_RULES:
        if method in methods and pattern.match(path):
            return scope
    return "read" if method in READS else "submit"


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the key's name and scope (`anonymous`, admin, when no key is configured)."""

    name: str
    scope: str
    authenticated: bool = True

    def may(self, scope: str) -> bool:
        return self.scope in api_keys.SCOPES and api_keys.scope_allows(self.scope, scope)


ANONYMOUS = Caller("anonymous", "admin", authenticated=False)  # the server has no keys: everyone may do anything
NOBODY = Caller("nobody", "", authenticated=False)  # keys are required and none came: only the open paths


def caller_of(request) -> Caller:
    """The caller the guard let through (ANONYMOUS when the server has no keys)."""
    return request.scope.get(CALLER, ANONYMOUS)


def session_token(key: str) -> str:
    """What the session cookie holds for WORKBENCH_API_KEY: derived from the key, never the key itself."""
    return hmac.new(key.encode(), b"workbench-session-v1", hashlib.sha256).hexdigest()


def cookie_value(scope: Scope, name: str) -> str | None:
    raw = header(scope, "cookie")
    if not raw:
        return None
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def local_path(target: str | None) -> str:
    """`target` if it is a path on this server, else "/" (the login form must not redirect elsewhere)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


class KeyRing:
    """The keys a request is checked against: WORKBENCH_API_KEY plus the store's active keys, re-read at most
    every `ttl_s` seconds (a new or revoked key counts within that). When the store does not answer, the last
    keys read stay in force; if none were ever read, only WORKBENCH_API_KEY gets in (fail closed)."""

    def __init__(self, env_key: str | None, ttl_s: float = 2.0, timeout_s: float = 1.0):
        self.env_key = env_key.encode() if env_key else None
        self.env_token = session_token(env_key).encode() if env_key else None
        self.ttl_s, self.timeout_s = ttl_s, timeout_s
        self.snapshot: api_keys.Snapshot | None = None
        self.read_at = float("-inf")
        self._lock = asyncio.Lock()

    def _load(self) -> api_keys.Snapshot | None:
        from workbench.store import current_store

        store = current_store()
        if store is None:  # no store in this process (a bare app in tests): only WORKBENCH_API_KEY exists
            return api_keys.Snapshot({})
        try:
            return api_keys.load(store, timeout=self.timeout_s)
        except Exception as exc:  # unreachable store: keep what we had (see the class docstring)
            log.warning("could not read the API keys (%s); keeping the last ones read", type(exc).__name__)
            return self.snapshot

    async def current(self) -> api_keys.Snapshot | None:
        if time.monotonic() - self.read_at < self.ttl_s:
            return self.snapshot
        async with self._lock:
            if time.monotonic() - self.read_at >= self.ttl_s:
                self.snapshot = await asyncio.to_thread(self._load)
                self.read_at = time.monotonic()
        return self.snapshot

    def refresh_soon(self) -> None:
        self.read_at = float("-inf")

    async def enabled(self) -> bool:
        """Whether requests need a key: one is configured, or the store could not say whether any is."""
        snapshot = await self.current()
        return self.env_key is not None or snapshot is None or bool(snapshot.keys)

    async def identify(self, given: str | None, session: str | None) -> tuple[Caller | None, str]:
        """The caller for a key or a session cookie, or (None, why not)."""
        snapshot = await self.current()
        if given:
            if self.env_key is not None and hmac.compare_digest(given.encode(), self.env_key):
                return Caller(ENV_KEY_NAME, "admin"), ""
            key = snapshot.verify(given) if snapshot is not None else None
            if key is not None:
                return Caller(key.name, key.scope), ""
            return None, "wrong or revoked API key" if snapshot is not None else "the store holding the keys is unreachable"
        if session:
            if self.env_token is not None and hmac.compare_digest(session.encode(), self.env_token):
                return Caller(ENV_KEY_NAME, "admin"), ""
            key = snapshot.verify_session(session) if snapshot is not None else None
            if key is not None:
                return Caller(key.name, key.scope), ""
            return None, "expired or unknown session (log in again)"
        return None, "no API key sent"

    async def login(self, given: str) -> tuple[Caller | None, str]:
        """(caller, cookie value) for a key typed into the login form, or (None, "")."""
        caller, _ = await self.identify(given, None)
        if caller is None:
            return None, ""
        if caller.name == ENV_KEY_NAME:
            return caller, self.env_token.decode()
        snapshot = await self.current()
        key = snapshot.verify(given)
        return caller, key.cookie(given)


def record_denial(scope: Scope, status: int, reason: str, caller: Caller | None, need: str) -> None:
    """One `access_denied` event (never key material: the key's name at most)."""
    guards.record_denial(scope, status, reason, needs=need, key=caller.name if caller else None,
                         scope=caller.scope if caller else None)


class ApiKeyGuard:
    """401 (or, for a browser asking for a page, a redirect to /login) unless the request carries a key; 403
    when the key's scope is too small for the route (SCOPE_RULES)."""

    def __init__(self, app: ASGIApp, keyring: KeyRing):
        self.app = app
        self.keyring = keyring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not await self.keyring.enabled():
            await self.app(scope, receive, send)
            return
        given = header(scope, "x-api-key") or (header(scope, "authorization") or "").removeprefix("Bearer ").strip()
        caller, why = await self.keyring.identify(given, cookie_value(scope, COOKIE))
        if scope["path"] in OPEN_PATHS:  # open, but the route may show more to a caller with a key (/health)
            scope[CALLER] = caller or NOBODY
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "WEBSOCKET") if scope["type"] == "http" else "WEBSOCKET"
        need = needed_scope(method, scope["path"])
        if caller is not None and caller.may(need):
            scope[CALLER] = caller
            await self.app(scope, receive, send)
            return
        if caller is not None:
            reason = f"key {caller.name!r} has scope {caller.scope}; {method} {scope['path']} needs {need}"
            record_denial(scope, 403, reason, caller, need)
            await refuse(scope, send, 403, f"This key's scope ({caller.scope}) does not allow this; it needs "
                                           f"{need}. Ask an admin for a key with that scope "
                                           f"(`workbench keys create NAME --scope {need}`).", "Forbidden")
            return
        record_denial(scope, 401, why, None, need)
        if scope["type"] == "http" and scope["method"] == "GET" and "text/html" in (header(scope, "accept") or ""):
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope["path"] + (f"?{query}" if query else "")
            await RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)(scope, receive, send)
            return
        await refuse(scope, send, 401, f"Missing or wrong API key ({why}): send it as X-API-Key (or Authorization: "
                                       f"Bearer); in a browser, log in at /login.", "Unauthorized")


LOGIN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>workbench · log in</title></head>
<body style="font-family:sans-serif;max-width:420px;margin:80px auto">
<h2>workbench</h2>
<p>This server needs an API key.</p>
{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<input type="password" name="key" placeholder="API key" autofocus style="width:100%;padding:6px">
<p><button type="submit">Log in</button></p>
</form></body></html>"""


def login_page(target: str, error: str = "", status: int = 200) -> HTMLResponse:
    shown = f'<p style="color:#b00">{html.escape(error)}</p>' if error else ""
    return HTMLResponse(LOGIN_PAGE.format(error=shown, next=html.escape(target)), status_code=status)


def keyring_of(request: Request) -> KeyRing | None:
    """The key ring the app was created with (create_app puts it on app.state)."""
    return getattr(request.app.state, "keyring", None)


def owner_of(request: Request) -> str | None:
    """Who the request is, for the memory its tasks use: the stored key's name, or WORKBENCH_API_KEY_NAME for
    WORKBENCH_API_KEY; None when the server has no keys (WORKBENCH_MEMORY_OWNER decides)."""
    caller = caller_of(request)
    if not caller.authenticated:
        return None
    if caller.name == ENV_KEY_NAME:
        from workbench.config import get_settings

        return get_settings().api_key_name
    return caller.name


@router.get("/login")
async def login_form(request: Request, next: str = "/") -> Response:
    keyring = keyring_of(request)
    if keyring is None or not await keyring.enabled():
        return RedirectResponse(local_path(next), status_code=303)
    return login_page(local_path(next))


@router.post("/login")
async def login(request: Request) -> Response:
    keyring = keyring_of(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    target = local_path((form.get("next") or ["/"])[0])
    if keyring is None or not await keyring.enabled():
        return RedirectResponse(target, status_code=303)
    caller, cookie = await keyring.login((form.get("key") or [""])[0])
    if caller is None:
        log.warning("refused a login from %s: wrong API key", request.client.host if request.client else "?")
        record_denial(request.scope, 401, "wrong API key at /login", None, "read")
        return login_page(target, "Wrong key.", status=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, cookie, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                        path="/")
    return response
