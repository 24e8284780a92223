"""The API key (WORKBENCH_API_KEY), checked on every HTTP request and every WebSocket handshake.

With no key set the server is open; `workbench serve` refuses to bind beyond loopback then. With a key, a
request must carry one of:

- `X-API-Key: <key>` or `Authorization: Bearer <key>` (API clients, the CLI, OpenAI SDKs; on WebSockets too);
- the session cookie a browser gets from the login page: open any page, get sent to `/login`, type the key
  once. The form posts it (same-origin only, see `guards.OriginGuard`) and the answer sets `workbench_session`,
  an HttpOnly, SameSite=Strict cookie holding an HMAC of the key (never the key itself), which the pages and
  their Panel WebSockets then send by themselves. Changing the key ends every session.

`/health` stays open (liveness for the CLI and orchestrators); `/login` too. A refusal is 401 with a JSON
body and one log line naming the path and the client, never the key; a browser asking for a page without a
credential is redirected to the login page instead.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import SecretStr

from workbench.server.guards import ASGIApp, Receive, Scope, Send, header, refuse

COOKIE = "workbench_session"
OPEN_PATHS = frozenset({"/health", "/login"})
log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)


def session_token(key: str) -> str:
    """What the session cookie holds: derived from the key, so the cookie never carries the key itself."""
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


class ApiKeyGuard:
    """401 (or, for a browser asking for a page, a redirect to /login) unless the request carries the key."""

    def __init__(self, app: ASGIApp, key: str):
        self.app = app
        self.key = key.encode()
        self.token = session_token(key).encode()

    def authorised(self, scope: Scope) -> bool:
        given = header(scope, "x-api-key") or (header(scope, "authorization") or "").removeprefix("Bearer ").strip()
        if given and hmac.compare_digest(given.encode(), self.key):
            return True
        session = cookie_value(scope, COOKIE)
        return bool(session) and hmac.compare_digest(session.encode(), self.token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or scope["path"] in OPEN_PATHS or self.authorised(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "http" and scope["method"] == "GET" and "text/html" in (header(scope, "accept") or ""):
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope["path"] + (f"?{query}" if query else "")
            await RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)(scope, receive, send)
            return
        await refuse(scope, send, 401, "Missing or wrong API key: send it as X-API-Key (or Authorization: Bearer); "
                                       "in a browser, log in at /login.", "Unauthorized")


LOGIN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>workbench · log in</title></head>
<body style="font-family:sans-serif;max-width:420px;margin:80px auto">
<h2>workbench</h2>
<p>This server needs its API key (WORKBENCH_API_KEY).</p>
{error}
<form method="post" action="/login">
<input type="hidden" name="next" value="{next}">
<input type="password" name="key" placeholder="API key" autofocus style="width:100%;padding:6px">
<p><button type="submit">Log in</button></p>
</form></body></html>"""


def login_page(target: str, error: str = "", status: int = 200) -> HTMLResponse:
    shown = f'<p style="color:#b00">{html.escape(error)}</p>' if error else ""
    return HTMLResponse(LOGIN_PAGE.format(error=shown, next=html.escape(target)), status_code=status)


def configured_key(request: Request) -> SecretStr | None:
    """The key the app was created with (create_app puts it on app.state)."""
    return getattr(request.app.state, "api_key", None)


def owner_of(request: Request) -> str | None:
    """Who the request is, for the memory its tasks use: the API key's name when the server has a key (every
    request reaching a handler then carried it); None without one (WORKBENCH_MEMORY_OWNER decides)."""
    if configured_key(request) is None:
        return None
    from workbench.config import get_settings

    return get_settings().api_key_name


@router.get("/login")
async def login_form(request: Request, next: str = "/") -> Response:
    if configured_key(request) is None:
        return RedirectResponse(local_path(next), status_code=303)
    return login_page(local_path(next))


@router.post("/login")
async def login(request: Request) -> Response:
    key = configured_key(request)
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    target = local_path((form.get("next") or ["/"])[0])
    if key is None:
        return RedirectResponse(target, status_code=303)
    given = (form.get("key") or [""])[0]
    if not hmac.compare_digest(given.encode(), key.get_secret_value().encode()):
        log.warning("refused a login from %s: wrong API key", request.client.host if request.client else "?")
        return login_page(target, "Wrong key.", status=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, session_token(key.get_secret_value()), httponly=True, samesite="strict",
                        secure=request.url.scheme == "https", path="/")
    return response
