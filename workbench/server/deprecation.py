"""Deprecated HTTP routes: the registry, and the headers every answer on them carries.

The API versioning policy (docs/reference/api-versioning.md) keeps a deprecated route working until its
sunset date, and says so on every answer, in the standard headers clients and gateways understand:

- `Deprecation: @<unix time>` (RFC 9745): since when the route is deprecated;
- `Sunset: <HTTP-date>` (RFC 8594): the earliest day it may be removed;
- `Link: </docs>; rel="deprecation"` (the served API reference, where the route is marked deprecated and
  names its successor) and `<successor>; rel="successor-version"`.

A route is deprecated by one `Deprecated` entry in `DEPRECATED` (and `deprecated=True` on its FastAPI
route, so the OpenAPI schema says so too); `DeprecationHeaders` wraps the app and adds the headers to every
answer whose path matches, errors included, so a client sees them whatever went wrong.
"""

from __future__ import annotations

import calendar
import logging
import re
from dataclasses import dataclass
from datetime import date, timedelta
from email.utils import formatdate

from workbench.server.guards import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
MIN_LIFETIME = timedelta(days=180)  # the policy: a deprecated v1 route lives at least six months
DOCS_LINK = "/docs"  # the served API reference (OpenAPI UI), reachable wherever the API is


@dataclass(frozen=True)
class Deprecated:
    """One deprecated route: its path (a regular expression, matched whole), its successor, the dates."""

    path: str
    successor: str
    since: date
    sunset: date
    why: str

    def __post_init__(self) -> None:
        if self.sunset - self.since < MIN_LIFETIME:
            raise ValueError(f"{self.path}: a deprecated route lives at least {MIN_LIFETIME.days} days "
                             f"(since {self.since}, sunset {self.sunset}); move the sunset later")

    def headers(self) -> list[tuple[bytes, bytes]]:
        since = calendar.timegm(self.since.timetuple())
        sunset = formatdate(calendar.timegm(self.sunset.timetuple()), usegmt=True)
        link = f'<{DOCS_LINK}>; rel="deprecation"; type="text/html", <{self.successor}>; rel="successor-version"'
        return [(b"deprecation", f"@{since}".encode()), (b"sunset", sunset.encode()), (b"link", link.encode())]

    def describe(self) -> str:
        """The OpenAPI description of the deprecated route."""
        return (f"Deprecated since {self.since}: use `{self.successor}` (same answer). {self.why} It answers until "
                f"at least {self.sunset} (the `Sunset` header); every answer carries `Deprecation`, `Sunset` and "
                f"`Link` headers.")


DEPRECATED: tuple[Deprecated, ...] = (
    Deprecated(path="/gateway/health", successor="/api/v1/gateway/health", since=date(2026, 12, 5),
               sunset=date(2027, 6, 5),
               why="It was the one API route outside the versioned /api/v1 namespace."),
)


def deprecation_of(path: str) -> Deprecated | None:
    for entry in DEPRECATED:
        if re.fullmatch(entry.path, path):
            return entry
    return None


def entry(path: str) -> Deprecated:
    """The registry entry a route declares itself with (a missing one is a programming error)."""
    found = deprecation_of(path)
    if found is None:
        raise KeyError(f"{path} is not in workbench.server.deprecation.DEPRECATED")
    return found


class DeprecationHeaders:
    """Adds the deprecation headers to every HTTP answer on a deprecated path."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = deprecation_of(scope.get("path", "")) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        log.info("deprecated route %s called (successor %s, sunset %s)", scope["path"], found.successor, found.sunset)
        extra = found.headers()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
