"""The http tools: GET and POST to allowed hosts, with size and time caps.

Both obey the web tools' allowlist (workbench/tools/web_policy.py: localhost and 127.0.0.1 unless
extended, never the workbench's own API port). Redirects are followed one hop at a time and every hop is
checked, so an allowed server cannot bounce a call somewhere else. A refused URL is a ToolRefused (logged as
a denial). The answer's body comes back as text, cut at MAX_BODY_BYTES with `truncated` set; headers that
can carry credentials are never returned. `http_get` only reads; `http_post` can change things on the
server it reaches, so read-only MCP profiles are refused it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from workbench.errors import ToolError, ToolRefused
from workbench.tools import Tool, tool
from workbench.tools.web_policy import WebPolicy

MAX_URL_CHARS = 2000
MAX_REQUEST_BYTES = 100_000  # a POST body
MAX_BODY_BYTES = 200_000  # of an answer, returned as text
MAX_REDIRECTS = 5
MAX_HEADERS = 20
RETURNED_HEADERS = ("content-type", "content-length", "last-modified", "etag", "location")
REFUSED_REQUEST_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "cookie"})


def _checked_url(url: str, policy: WebPolicy) -> str:
    if not isinstance(url, str) or not url.strip():
        raise ToolError("Give the URL to fetch, e.g. http://127.0.0.1:8000/api/items.")
    if len(url) > MAX_URL_CHARS:
        raise ToolError(f"The URL is {len(url):,} characters; the limit is {MAX_URL_CHARS:,}.")
    if urlsplit(url).scheme not in ("http", "https"):
        raise ToolRefused(f"Refused {url[:200]!r}: only http and https URLs may be fetched.")
    why = policy.refusal(url)
    if why is not None:
        raise ToolRefused(f"Refused {url[:200]!r}: {why}.")
    return url


def _checked_headers(headers: dict[str, str] | None) -> dict[str, str]:
    headers = dict(headers or {})
    if len(headers) > MAX_HEADERS:
        raise ToolError(f"{len(headers)} headers given; the limit is {MAX_HEADERS}.")
    bad = sorted(k for k in headers if k.lower() in REFUSED_REQUEST_HEADERS)
    if bad:
        raise ToolError(f"These headers are set by the tool itself and may not be given: {', '.join(bad)}.")
    for key, value in headers.items():
        if any(c in key + value for c in "\r\n\0"):
            raise ToolError(f"Header {key[:60]!r} contains a line break or NUL byte.")
    return headers


def request(method: str, url: str, *, body: str | None = None, headers: dict[str, str] | None = None,
            policy: WebPolicy | None = None) -> dict[str, Any]:
    """One checked request, redirects followed hop by hop (a POST's redirect is followed with GET)."""
    policy = policy or WebPolicy.from_settings()
    data = body.encode() if body is not None else None
    if data is not None and len(data) > MAX_REQUEST_BYTES:
        raise ToolError(f"The request body is {len(data):,} bytes; the limit is {MAX_REQUEST_BYTES:,}.")
    sent = _checked_headers(headers)
    target = _checked_url(url, policy)
    with httpx.Client(timeout=policy.timeout_s, follow_redirects=False, trust_env=False) as client:
        for _ in range(MAX_REDIRECTS + 1):
            try:
                with client.stream(method, target, content=data, headers=sent) as response:
                    if response.is_redirect and response.headers.get("location"):
                        target = _checked_url(urljoin(target, response.headers["location"]), policy)
                        method, data = ("GET", None) if response.status_code in (301, 302, 303) else (method, data)
                        continue
                    return _answer(target, response)
            except httpx.TimeoutException:
                raise ToolError(f"{target[:200]} did not answer within {policy.timeout_s:g} s.") from None
            except httpx.HTTPError as exc:
                raise ToolError(f"Could not reach {target[:200]}: {type(exc).__name__}: {exc}"[:400]) from None
    raise ToolError(f"{url[:200]} redirects more than {MAX_REDIRECTS} times.")


def _answer(url: str, response: httpx.Response) -> dict[str, Any]:
    kept, truncated = bytearray(), False
    for chunk in response.iter_bytes():
        room = MAX_BODY_BYTES - len(kept)
        kept += chunk[:room]
        if len(chunk) > room:
            truncated = True
            break
    return {"url": url, "status": response.status_code,
            "headers": {k: v for k, v in response.headers.items() if k.lower() in RETURNED_HEADERS},
            "text": bytes(kept).decode(response.encoding or "utf-8", "replace"), "truncated": truncated}


@tool(permissions=["network"], read_only=True, destructive=False)
def http_get(url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Fetch a URL with GET (allowed hosts only: localhost and 127.0.0.1 unless configured); returns the
    status, a few headers and the body as text (cut at 200 kB, `truncated` says so).

    Args:
        url: The http(s) URL, e.g. http://127.0.0.1:8000/api/items.
        headers: Extra request headers (Accept, Authorization for that server); at most 20.
    """
    return request("GET", url, headers=headers)


@tool(permissions=["network"], read_only=False, destructive=False)
def http_post(url: str, body: str = "", content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> dict[str, Any]:
    """Send a POST to a URL (allowed hosts only); returns the status, a few headers and the body as text.

    Args:
        url: The http(s) URL.
        body: The request body as text (JSON for an API); at most 100 kB.
        content_type: Its media type.
        headers: Extra request headers; at most 20.
    """
    return request("POST", url, body=body, headers={**(headers or {}), "Content-Type": content_type})


HTTP_TOOLS: dict[str, Tool] = {t.name: t for t in (http_get, http_post)}
