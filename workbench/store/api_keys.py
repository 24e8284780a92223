"""Named API keys with a scope (read < submit < admin), hashed at rest; and which key submitted a task.

A key reads `wbk_<key_id>_<secret>`: `key_id` (8 hex characters) is public and finds the row, `secret` is
32 random bytes (base64url). The table keeps HMAC-SHA256(salt, secret) with a random 16-byte salt per key,
never the secret. Why not a slow password hash (scrypt, bcrypt): those make guessing a *low-entropy*
password expensive; a 256-bit random secret cannot be guessed at any hash speed, so a fast keyed hash is as
safe and costs microseconds per request instead of tens of milliseconds (the same reasoning as GitHub's and
PyPI's tokens). The comparison is constant-time.

A browser logs in once with a key and then carries a cookie: `<key_id>.<token>` where token is
HMAC-SHA256(secret, "workbench-session-v1"). The table keeps HMAC(salt, token) for that too, so neither a
cookie nor a key can be made from what the database holds. Revoking a key ends its sessions.

    secret = create(store, "ci", "submit")      # shown once; list() never returns it
    snapshot = load(store)                      # {key_id: StoredKey} of the keys not revoked
    snapshot.verify(secret) -> StoredKey | None
    secret = rotate(store, "ci")                # a new secret under the same name (limits and spend stay)

Each key may carry its own limits (budget_usd_per_day, rate_per_minute: workbench.store.spend.set_key_limits);
budgets count by the key's name, so neither rotating nor sending another string resets them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from workbench.errors import WorkbenchError

SCOPES = ("read", "submit", "admin")  # each includes the ones before it
PREFIX = "wbk_"
SESSION_CONTEXT = b"workbench-session-v1"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KEY_RE = re.compile(r"^wbk_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")


class KeyRequestError(WorkbenchError):
    """A key management request that cannot be done (bad name or scope, duplicate, unknown)."""

    http_status = 422
    exit_code = 2


class UnknownKey(KeyRequestError):
    http_status = 404
    exit_code = 4


def scope_allows(have: str, need: str) -> bool:
    """Whether a key of scope `have` may do what needs `need` (admin ⊇ submit ⊇ read)."""
    return SCOPES.index(have) >= SCOPES.index(need)


def _hash(salt: bytes, value: bytes) -> bytes:
    return hmac.new(salt, value, hashlib.sha256).digest()


def session_token(secret: str) -> str:
    """The browser-session token derived from a secret (the cookie carries it, never the secret)."""
    return hmac.new(secret.encode(), SESSION_CONTEXT, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class StoredKey:
    name: str
    key_id: str
    scope: str
    salt: bytes
    secret_hash: bytes
    session_hash: bytes

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(_hash(self.salt, secret.encode()), self.secret_hash)

    def matches_session(self, token: str) -> bool:
        return hmac.compare_digest(_hash(self.salt, token.encode()), self.session_hash)

    def cookie(self, secret: str) -> str:
        return f"{self.key_id}.{session_token(secret)}"


@dataclass(frozen=True)
class Snapshot:
    """The active keys at one moment, by key_id (what the server checks requests against)."""

    keys: dict[str, StoredKey]

    def verify(self, given: str) -> StoredKey | None:
        match = KEY_RE.match(given)
        key = self.keys.get(match.group(1)) if match else None
        return key if key is not None and key.matches(given) else None

    def verify_session(self, cookie: str) -> StoredKey | None:
        key_id, _, token = cookie.partition(".")
        key = self.keys.get(key_id)
        return key if key is not None and token and key.matches_session(token) else None


def _check(name: str, scope: str) -> None:
    if not NAME_RE.match(name):
        raise KeyRequestError(f"Key name {name[:80]!r} is not valid: use 1 to 64 letters, digits, '_', '.' or '-', "
                        f"starting with a letter or digit.")
    if scope not in SCOPES:
        raise KeyRequestError(f"Scope {scope[:40]!r} is not one of {', '.join(SCOPES)}.")


def _new_secret() -> tuple[str, tuple[str, bytes, bytes, bytes]]:
    """A new secret, and what the table keeps of it: (key_id, salt, secret_hash, session_hash)."""
    key_id = secrets.token_hex(4)
    secret = f"{PREFIX}{key_id}_{base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip('=')}"
    salt = secrets.token_bytes(16)
    return secret, (key_id, salt, _hash(salt, secret.encode()), _hash(salt, session_token(secret).encode()))


def create(store, name: str, scope: str) -> str:
    """Store a new key; returns its secret (the only time it exists outside the caller's hands)."""
    _check(name, scope)
    secret, (key_id, salt, secret_hash, session_hash) = _new_secret()
    try:
        with store.connection() as conn:
            conn.execute(
                "INSERT INTO api_keys (name, key_id, scope, salt, secret_hash, session_hash) "
                "VALUES (%s, %s, %s, %s, %s, %s)", (name, key_id, scope, salt, secret_hash, session_hash))
    except psycopg.errors.UniqueViolation:
        raise KeyRequestError(f"A key named {name!r} exists already: revoke it first (`workbench keys revoke {name}`) "
                        f"or pick another name.") from None
    return secret


def rotate(store, name: str) -> str:
    """Give an active key a new secret (the old one stops working; its sessions end); returns the new secret.
    The name stays, and with it the key's scope, limits and what it has spent (budgets key on the name)."""
    secret, (key_id, salt, secret_hash, session_hash) = _new_secret()
    with store.connection() as conn:
        done = conn.execute(
            "UPDATE api_keys SET key_id = %s, salt = %s, secret_hash = %s, session_hash = %s "
            "WHERE name = %s AND revoked_at IS NULL", (key_id, salt, secret_hash, session_hash, name)).rowcount
    if not done:
        raise UnknownKey(f"No active key named {name[:80]!r}: `workbench keys list` shows them.")
    return secret


def listing(store) -> list[dict[str, Any]]:
    """Every key, newest first: name, key_id, scope, created_at, revoked_at, and its own limits
    (budget_usd_per_day, rate_per_minute; None = the gateway policy's) — no hash, no secret."""
    with store.connection() as conn:
        rows = conn.execute("SELECT name, key_id, scope, created_at, revoked_at, budget_usd_per_day, rate_per_minute "
                            "FROM api_keys ORDER BY created_at DESC").fetchall()
    return [{"name": n, "key_id": k, "scope": s, "created_at": _iso(c), "revoked_at": _iso(r),
             "budget_usd_per_day": b, "rate_per_minute": m} for n, k, s, c, r, b, m in rows]


def revoke(store, name: str) -> None:
    """Revoke a key now (its sessions end with it); UnknownKey if no active key has that name."""
    with store.connection() as conn:
        done = conn.execute("UPDATE api_keys SET revoked_at = now() WHERE name = %s AND revoked_at IS NULL",
                            (name,)).rowcount
    if not done:
        raise UnknownKey(f"No active key named {name[:80]!r}: `workbench keys list` shows them.")


def load(store, timeout: float = 30.0) -> Snapshot:
    """The active keys (raises the driver's or the pool's error when Postgres does not answer in time)."""
    with store.pool.connection(timeout=timeout) as conn:
        rows = conn.execute("SELECT name, key_id, scope, salt, secret_hash, session_hash FROM api_keys "
                            "WHERE revoked_at IS NULL").fetchall()
    return Snapshot({r[1]: StoredKey(r[0], r[1], r[2], bytes(r[3]), bytes(r[4]), bytes(r[5])) for r in rows})


def set_owner(store, task_id: str, key_name: str) -> None:
    with store.connection() as conn:
        conn.execute("INSERT INTO task_owners (task_id, key_name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                     (str(task_id), key_name))


def owner(store, task_id: str) -> str | None:
    with store.connection() as conn:
        try:
            row = conn.execute("SELECT key_name FROM task_owners WHERE task_id = %s", (str(task_id),)).fetchone()
        except psycopg.errors.InvalidTextRepresentation:
            return None
    return row[0] if row else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
