"""Whether a host name or address is this machine's loopback: one answer for the server's bind and
Host checks and for the providers' network rule."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback_host(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1); a bare host, no port or brackets."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str | None) -> bool:
    """Whether a URL points at this machine; a URL without a scheme (`localhost:11434`, as OLLAMA_HOST may
    be written) is read as host and port."""
    url = url or ""
    return is_loopback_host(urlsplit(url if "//" in url else f"//{url}").hostname or "")
