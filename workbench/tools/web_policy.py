"""Where the web tools may go: one allowlist for the browser tool's page and the http tools.

http(s) on WORKBENCH_BROWSER_ALLOWED_HOSTS (localhost and 127.0.0.1 unless extended), never the workbench's
own server port unless WORKBENCH_BROWSER_ALLOW_WORKBENCH_API is set: a tool must not drive the workbench's API.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class WebPolicy:
    """Where the web tools (the browser's page, http_get and http_post) may go. `blocked_ports` are the
    workbench's own servers (its API)."""

    hosts: frozenset[str] = frozenset({"localhost", "127.0.0.1"})
    blocked_ports: frozenset[int] = frozenset()
    timeout_s: float = 15.0

    @classmethod
    def from_settings(cls) -> WebPolicy:
        from workbench.config import get_settings

        s = get_settings()
        hosts = frozenset(h.strip().lower() for h in s.browser_allowed_hosts.split(",") if h.strip())
        ports = frozenset() if s.browser_allow_workbench_api else frozenset({s.port})
        return cls(hosts=hosts, blocked_ports=ports, timeout_s=s.browser_timeout_s)

    def refusal(self, url: str) -> str | None:
        """Why `url` may not be reached (None: it may)."""
        if url.startswith(("about:blank", "data:")):  # the empty page, and Chromium's own error pages
            return None
        try:
            parts = urlsplit(url)
            port = parts.port or {"http": 80, "https": 443, "ws": 80, "wss": 443}.get(parts.scheme)
        except ValueError:
            return f"{url[:200]!r} is not a valid URL"
        if parts.scheme not in ("http", "https", "ws", "wss"):
            return f"only http and https URLs may be opened, not {parts.scheme or 'a relative URL'}:"
        host = (parts.hostname or "").lower()
        if host not in self.hosts:
            return (f"the host {host or '(none)'} is not allowed (allowed: {', '.join(sorted(self.hosts))}; "
                    f"extend WORKBENCH_BROWSER_ALLOWED_HOSTS to add one)")
        if port in self.blocked_ports:
            return (f"port {port} is the workbench's own server, which the page may not reach (set "
                    f"WORKBENCH_BROWSER_ALLOW_WORKBENCH_API=1 to allow it)")
        return None
