"""Settings values that may carry credentials, made safe to print: a webhook URL is its own secret (the token is
its path), so only its scheme and host are shown; any other URL keeps its scheme, host and path, with the user
and password and every query value masked (`https://****@collector:4318/v1/traces?token=****`).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "****"


def _host(parts) -> str:
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host + (f":{parts.port}" if _port(parts) else "")


def _port(parts) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def url(value: str) -> str:
    """`value` with credentials masked (unchanged when it has none; not a URL: masked whole if it has '@')."""
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        return MASK if "@" in value else value
    netloc = (MASK + "@" if "@" in parts.netloc else "") + _host(parts)
    query = urlencode([(k, MASK) for k, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def webhook(value: str) -> str:
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        return MASK
    return f"{parts.scheme}://{_host(parts)}/{MASK}"


SECRET_FIELD = re.compile(r"authorization|password|passwd|secret|cookie|api[-_]?key|(^|[-_])token$", re.I)


def fields(value: object) -> object:
    """`value` (JSON-like) with the value of every key that names a credential masked, at any depth: a tool's
    arguments may carry an Authorization header, and tool arguments are stored in events."""
    if isinstance(value, dict):
        return {k: MASK if isinstance(k, str) and SECRET_FIELD.search(k) else fields(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [fields(v) for v in value]
    return value
