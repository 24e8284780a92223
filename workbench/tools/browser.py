"""The browser tool: a headless Chromium page that agents and MCP clients open, read, click, fill and photograph.

    browser_open({"url": "http://127.0.0.1:8000/"})   # {"url", "title", "status", "text", "blocked"}
    browser_text({"selector": "h1"})                  # the DOM text (never HTML) of the page or one element
    browser_click({"selector": "text=Save"}); browser_fill({"selector": "#q", "value": "duckdb"})
    browser_screenshot({})                            # {"path": <PNG under WORKBENCH_HOME/browser>, "bytes"}

One page per process, driven by Playwright's sync API on Debian's Chromium from a thread of its own: the
sync API must stay on the thread that started it, while MCP calls arrive on worker threads.

The page only reaches URLs the policy allows: http(s) on WORKBENCH_BROWSER_ALLOWED_HOSTS (localhost and
127.0.0.1 unless extended), never the workbench's own server port (WORKBENCH_PORT) unless
WORKBENCH_BROWSER_ALLOW_WORKBENCH_API is set. Every request the page makes (frames, scripts, fetch,
WebSockets, form posts) passes the same check, and each redirect hop is checked before the browser follows
it, because Playwright's routing does not see the requests a redirect starts. A URL the tool is asked to
open and is not allowed is refused (a ToolRefused: logged as a denial); a request the page makes and is not
allowed is cut and listed under `blocked` in the result, and recorded as a refused `tool_call` event.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from workbench import telemetry
from workbench.errors import ToolError, ToolRefused
from workbench.tools import Tool, tool
from workbench.tools.web_policy import WebPolicy

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}  # screenshots are of the viewport: a bounded PNG
MAX_URL_CHARS = 2000
MAX_SELECTOR_CHARS = 500
MAX_FILL_CHARS = 10_000
MAX_TEXT_CHARS = 20_000  # DOM text returned by one call
MAX_RESPONSE_BYTES = 5_000_000  # one response the page receives; a larger one is cut
MAX_PAGE_BYTES = 20_000_000  # all responses since the last browser_open
MAX_REDIRECTS = 10
OPEN_SUMMARY_CHARS = 2000  # text shown with the result of open and click


@dataclass
class _Page:
    """What lives on the browser thread: Playwright, the browser, its context and the one page."""

    playwright: Any
    browser: Any
    context: Any
    page: Any
    profile: tempfile.TemporaryDirectory
    blocked: list[dict[str, str]] = field(default_factory=list)
    page_bytes: int = 0
    opened: bool = False


class BrowserSession:
    """One headless Chromium page, started on first use, driven from its own thread."""

    def __init__(self, policy: WebPolicy | None = None, chromium: Path | None = None,
                 shots_dir: Path | None = None):
        self._policy = policy
        self._chromium = chromium
        self._shots_dir = shots_dir
        self._thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="browser")
        self._state: _Page | None = None
        self._lock = threading.Lock()

    @property
    def policy(self) -> WebPolicy:
        if self._policy is None:
            self._policy = WebPolicy.from_settings()
        return self._policy

    def run(self, op: Callable[[_Page], dict[str, Any]]) -> dict[str, Any]:
        """Run `op` on the browser thread; its result plus the page requests cut meanwhile (`blocked`)."""
        with self._lock:  # one call at a time: they share the page
            future = self._thread.submit(self._call, op)
            try:
                outcome, blocked = future.result(timeout=self.policy.timeout_s * 2 + 30)
            except concurrent.futures.TimeoutError:
                raise ToolError(f"The browser did not answer within {self.policy.timeout_s * 2 + 30:g} s; "
                                f"try again or open a simpler page.") from None
        for item in blocked:  # recorded here, on the caller's thread: its span is the call's
            telemetry.emit("tool_call", error=item["reason"],
                           payload={"tool": "browser", "blocked_request": item["url"], "refused": True,
                                    "denied": item["reason"]})
        if isinstance(outcome, BaseException):
            raise outcome
        return {**outcome, "blocked": blocked}

    def _call(self, op: Callable[[_Page], dict[str, Any]]) -> tuple[Any, list[dict[str, str]]]:
        """(op's result or the ToolError to raise, the requests cut meanwhile): on the browser thread."""
        from playwright.sync_api import Error as PlaywrightError

        state = self._state or self._start()
        try:
            result: Any = op(state)
        except (ToolError, ToolRefused) as exc:
            result = exc
        except PlaywrightError as exc:
            result = self._failure(state, exc)
        blocked, state.blocked = state.blocked, []
        return result, blocked

    def _failure(self, state: _Page, exc: Exception) -> ToolError:
        first = str(exc).splitlines()[0][:300]
        if "ERR_BLOCKED_BY_CLIENT" in first and state.blocked:
            state.opened = False
            return ToolRefused(f"Refused: the page {state.blocked[-1]['url']!r} was not loaded: "
                               f"{state.blocked[-1]['reason']}.")
        if "Timeout" in type(exc).__name__ or "Timeout" in first:
            return ToolError(f"The browser gave up after {self.policy.timeout_s:g} s: {first}. Check the "
                             f"selector (browser_text shows the page) or that the page answers.")
        if state.page.is_closed() or not state.browser.is_connected():
            self._stop()  # a crashed page or browser: the next call starts a fresh one
        return ToolError(f"The browser failed: {first}")

    def _start(self) -> _Page:
        from playwright.sync_api import sync_playwright

        from workbench.config import get_settings

        chromium = self._chromium or get_settings().chromium
        if not Path(chromium).exists():
            raise ToolError(f"No Chromium at {chromium}: install Debian's chromium (apt-get install chromium) or "
                            f"point WORKBENCH_CHROMIUM at one.")
        profile = tempfile.TemporaryDirectory(prefix="wb-browser-")  # a fresh user-data dir per session
        pw = sync_playwright().start()
        try:
            browser = pw.chromium.launch(executable_path=str(chromium), args=CHROMIUM_FLAGS,
                                         timeout=self.policy.timeout_s * 1000)
            # A persistent user-data dir would keep state across sessions; the temporary one is thrown away.
            context = browser.new_context(viewport=VIEWPORT, service_workers="block", accept_downloads=False)
        except Exception:
            pw.stop()
            profile.cleanup()
            raise
        context.set_default_timeout(self.policy.timeout_s * 1000)
        state = _Page(pw, browser, context, None, profile)
        context.route("**/*", lambda route: self._route(state, route))
        context.route_web_socket("**/*", lambda ws: self._route_socket(state, ws))
        state.page = context.new_page()
        self._state = state
        return state

    def _route(self, state: _Page, route: Any) -> None:
        """Every request the page makes: allowed, fetched here (redirects one hop at a time), size-checked."""
        url = route.request.url
        why = self.policy.refusal(url)
        if why is None and state.page_bytes > MAX_PAGE_BYTES:
            why = f"the page has already received more than {MAX_PAGE_BYTES:,} bytes"
        if why is not None:
            state.blocked.append({"url": url[:300], "reason": why})
            route.abort("blockedbyclient")
            return
        try:
            response = route.fetch(max_redirects=0, timeout=self.policy.timeout_s * 1000)
        except Exception:  # noqa: BLE001 - refused connection, reset: the page sees a failed request
            route.abort("failed")
            return
        if 300 <= response.status < 400 and response.headers.get("location"):
            why = self._redirect_refusal(route, urljoin(url, response.headers["location"]))
            if why is not None:
                state.blocked.append({"url": url[:300], "reason": f"it redirects where {why}"})
                route.abort("blockedbyclient")
                return
            # Every hop was checked: hand the browser this response (not a second request) and it follows.
            route.fulfill(status=response.status, headers=_passed_headers(response.headers), body=b"")
            return
        body = response.body()
        state.page_bytes += len(body)
        if len(body) > MAX_RESPONSE_BYTES:
            state.blocked.append({"url": url[:300], "reason": f"the response is larger than {MAX_RESPONSE_BYTES:,} bytes"})
            route.abort("blockedbyclient")
            return
        route.fulfill(response=response, body=body)

    def _redirect_refusal(self, route: Any, target: str) -> str | None:
        """Why a redirect chain starting at `target` may not be followed: each hop is fetched and checked."""
        for _ in range(MAX_REDIRECTS):
            why = self.policy.refusal(target)
            if why is not None:
                return why
            # GET, whatever the first request's method: checking a hop must not repeat a form's POST.
            hop = route.fetch(url=target, method="GET", post_data=None, max_redirects=0,
                              timeout=self.policy.timeout_s * 1000)
            location = hop.headers.get("location")
            if not (300 <= hop.status < 400 and location):
                return None
            target = urljoin(target, location)
        return f"it redirects more than {MAX_REDIRECTS} times"

    def _route_socket(self, state: _Page, ws: Any) -> None:
        why = self.policy.refusal(ws.url)
        if why is not None:
            state.blocked.append({"url": ws.url[:300], "reason": why})
            ws.close(code=1008, reason="blocked by the workbench browser policy")
            return
        ws.connect_to_server()

    # --- the operations (run on the browser thread) ---------------------------------------------------

    def open(self, url: str) -> dict[str, Any]:
        url = url.strip()
        if len(url) > MAX_URL_CHARS:
            raise ToolError(f"The URL is {len(url):,} characters long; at most {MAX_URL_CHARS:,} are accepted.")
        why = self.policy.refusal(url)
        if why is not None:
            raise ToolRefused(f"Refused: the browser may not open {url[:200]!r}: {why}.")

        def op(state: _Page) -> dict[str, Any]:
            state.page_bytes, state.opened = 0, False
            # A new tab per open: a refused or failed navigation can leave Chromium's error page still
            # loading in the old one, and it would interrupt this navigation.
            state.page.close()
            state.page = state.context.new_page()
            response = state.page.goto(url, wait_until="load")
            state.opened = True
            return {**_summary(state.page), "status": response.status if response else None}

        return self.run(op)

    def text(self, selector: str | None = None) -> dict[str, Any]:
        _check_selector(selector)

        def op(state: _Page) -> dict[str, Any]:
            _require_open(state)
            text = state.page.inner_text(selector or "body")
            return {"url": state.page.url, "title": state.page.title(), "text": text[:MAX_TEXT_CHARS],
                    "truncated": len(text) > MAX_TEXT_CHARS}

        return self.run(op)

    def click(self, selector: str) -> dict[str, Any]:
        _check_selector(selector)

        def op(state: _Page) -> dict[str, Any]:
            _require_open(state)
            state.page.click(selector)
            state.page.wait_for_load_state("load")
            return _summary(state.page)

        return self.run(op)

    def fill(self, selector: str, value: str) -> dict[str, Any]:
        _check_selector(selector)
        if len(value) > MAX_FILL_CHARS:
            raise ToolError(f"The value is {len(value):,} characters long; at most {MAX_FILL_CHARS:,} are accepted.")

        def op(state: _Page) -> dict[str, Any]:
            _require_open(state)
            state.page.fill(selector, value)
            return {"url": state.page.url, "selector": selector, "filled_chars": len(value)}

        return self.run(op)

    def screenshot(self) -> dict[str, Any]:
        folder = self._shots_dir or _default_shots_dir()

        def op(state: _Page) -> dict[str, Any]:
            _require_open(state)
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"shot-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.png"
            data = state.page.screenshot(path=str(path), full_page=False, type="png")
            return {"path": str(path), "bytes": len(data), "url": state.page.url, "title": state.page.title()}

        return self.run(op)

    def close(self) -> None:
        with self._lock:
            try:
                self._thread.submit(self._stop).result(timeout=30)
            except (concurrent.futures.TimeoutError, RuntimeError):
                pass
            self._thread.shutdown(wait=False)

    def _stop(self) -> None:
        state, self._state = self._state, None
        if state is None:
            return
        for closer in (state.context.close, state.browser.close, state.playwright.stop):
            try:
                closer()
            except Exception:  # noqa: BLE001 - already gone
                pass
        state.profile.cleanup()


def _passed_headers(headers: dict[str, str]) -> dict[str, str]:
    """A fetched response's headers, less those describing a body that is not passed on."""
    return {k: v for k, v in headers.items() if k.lower() not in ("content-length", "content-encoding",
                                                                   "transfer-encoding")}


def _summary(page: Any) -> dict[str, Any]:
    text = page.inner_text("body") if page.url != "about:blank" else ""
    cut = len(text) > OPEN_SUMMARY_CHARS
    return {"url": page.url, "title": page.title(), "text": text[:OPEN_SUMMARY_CHARS], "truncated": cut}


def _check_selector(selector: str | None) -> None:
    if selector is not None and (not selector.strip() or len(selector) > MAX_SELECTOR_CHARS):
        raise ToolError(f"A selector must be 1 to {MAX_SELECTOR_CHARS} characters (CSS such as `#id`, or "
                        f"`text=Save`), got {len(selector)}.")


def _require_open(state: _Page) -> None:
    if not state.opened:
        raise ToolError("No page is open: call browser_open with a URL first.")


def _default_shots_dir() -> Path:
    from workbench.config import get_settings

    return get_settings().home / "browser"


# --- the process's session and the tools around it ------------------------------------------------

_SESSION: dict[str, BrowserSession] = {}
_SESSION_LOCK = threading.Lock()


def session() -> BrowserSession:
    """This process's browser (started on the first call that needs the page, closed at exit)."""
    with _SESSION_LOCK:
        if "default" not in _SESSION:
            _SESSION["default"] = BrowserSession()
            atexit.register(close_session)
        return _SESSION["default"]


def close_session() -> None:
    """Close this process's browser; the next call starts a fresh one, with the settings of then."""
    with _SESSION_LOCK:
        current = _SESSION.pop("default", None)
    if current is not None:
        current.close()


@tool(permissions=["network"], read_only=True, destructive=False)
def browser_open(url: str) -> dict[str, Any]:
    """Open a web page in the headless browser (local pages only: localhost, 127.0.0.1 unless configured);
    returns its final URL, title, HTTP status and the start of its text.

    Args:
        url: The page's http(s) URL, e.g. http://127.0.0.1:8000/.
    """
    return session().open(url)


@tool(permissions=["network"], read_only=True, destructive=False)
def browser_text(selector: str | None = None) -> dict[str, Any]:
    """The visible text of the open page, or of the first element a selector matches (text, never HTML).

    Args:
        selector: A CSS selector (`h1`, `#total`) or Playwright selector (`text=Total`); the whole page if omitted.
    """
    return session().text(selector)


@tool(permissions=["network"], read_only=True, destructive=False)
def browser_screenshot() -> dict[str, Any]:
    """Save a PNG screenshot of the open page's viewport under the data directory; returns its path."""
    return session().screenshot()


@tool(permissions=["network"], read_only=False, destructive=True)
def browser_click(selector: str) -> dict[str, Any]:
    """Click an element of the open page (a button or link may submit, delete or navigate).

    Args:
        selector: A CSS selector (`#save`) or Playwright selector (`text=Save`, `role=button[name="Save"]`).
    """
    return session().click(selector)


@tool(permissions=["network"], read_only=False, destructive=False)
def browser_fill(selector: str, value: str) -> dict[str, Any]:
    """Type a value into an input or text area of the open page (replacing what it held; nothing is submitted).

    Args:
        selector: A CSS selector (`#email`) or Playwright selector of the field.
        value: The text to put in it.
    """
    return session().fill(selector, value)


BROWSER_TOOLS: dict[str, Tool] = {t.name: t for t in (browser_open, browser_text, browser_screenshot,
                                                      browser_click, browser_fill)}
