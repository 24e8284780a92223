"""`workbench keys`: create, list and revoke the server's API keys (stored hashed, each with a scope).

The secret is printed once, by `create`, on stdout only; nothing else ever shows it (see
workbench.store.api_keys for how it is kept).
"""

from __future__ import annotations

import json
from enum import Enum

import typer
from rich.console import Console
from rich.table import Table

from workbench.cli.text import plain

keys_app = typer.Typer(help="API keys of the served workbench: read, submit or admin scope, hashed at rest.",
                       no_args_is_help=True)


class Scope(str, Enum):
    read = "read"
    submit = "submit"
    admin = "admin"


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


def _open():
    from workbench.store import Store

    return Store.open(pool_size=2, writer=False)


@keys_app.command("create")
def create(
    name: str = typer.Argument(..., help="A name for the key (letters, digits, '_', '.', '-'): shown in logs."),
    scope: Scope = typer.Option(..., "--scope", help="read: GET and streams; submit: also tasks and /v1; "
                                                     "admin: also keys, configuration, others' tasks."),
    as_json: bool = typer.Option(False, "--json", help="Print {name, scope, key} as JSON."),
) -> None:
    """Create a key and print its secret, once: it is stored only as a salted hash."""
    from workbench.store import api_keys

    store = _open()
    try:
        secret = api_keys.create(store, name, scope.value)
    finally:
        store.close()
    if as_json:
        print(json.dumps({"name": name, "scope": scope.value, "key": secret}))
        return
    print(secret)
    Console(stderr=True).print(f"created key {plain(name)!s} ({scope.value}). This is the only time the key is shown: "
                               f"send it as X-API-Key or Authorization: Bearer.", highlight=False)


@keys_app.command("list")
def list_keys(as_json: bool = typer.Option(False, "--json", help="Print the keys as JSON.")) -> None:
    """Every key: name, public id, scope, when created and revoked (never a secret or a hash)."""
    from workbench.store import api_keys

    store = _open()
    try:
        rows = api_keys.listing(store)
    finally:
        store.close()
    if as_json:
        print(json.dumps(rows))
        return
    table = Table("name", "id", "scope", "created", "revoked", "USD/day", "calls/min")
    for row in rows:
        table.add_row(plain(row["name"]), row["key_id"], row["scope"], row["created_at"][:19],
                      (row["revoked_at"] or "")[:19], _limit(row["budget_usd_per_day"]), _limit(row["rate_per_minute"]))
    Console().print(table)


@keys_app.command("revoke")
def revoke(name: str = typer.Argument(..., help="The key's name (`workbench keys list`)."),
           as_json: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Revoke a key: a running server refuses it within 2 seconds, and its browser sessions end."""
    from workbench.store import api_keys

    store = _open()
    try:
        api_keys.revoke(store, name)
    finally:
        store.close()
    if as_json:
        print(json.dumps({"revoked": name}))
        return
    Console().print(f"revoked {plain(name)}", highlight=False)


def _limit(value: float | int | None) -> str:
    return "policy" if value is None else f"{value:g}"


@keys_app.command("rotate")
def rotate(name: str = typer.Argument(..., help="The key's name (`workbench keys list`)."),
           as_json: bool = typer.Option(False, "--json", help="Print {name, key} as JSON.")) -> None:
    """Give a key a new secret and print it, once: the old secret stops working within 2 seconds. The name,
    scope, limits and today's spend stay with the key."""
    from workbench.store import api_keys

    store = _open()
    try:
        secret = api_keys.rotate(store, name)
    finally:
        store.close()
    if as_json:
        print(json.dumps({"name": name, "key": secret}))
        return
    print(secret)
    Console(stderr=True).print(f"rotated key {plain(name)}: this is the only time the new key is shown.",
                               highlight=False)


@keys_app.command("limit")
def limit(
    name: str = typer.Argument(..., help="The key's name (`workbench keys list`)."),
    usd_per_day: float | None = typer.Option(None, "--usd-per-day", min=0, max=1e9,
                                             help="What the key's model calls may cost per UTC day (0 refuses every "
                                                  "call); unset: the gateway policy's budgets.key."),
    per_minute: int | None = typer.Option(None, "--per-minute", min=0, max=1_000_000,
                                          help="Model calls per minute; unset: the policy's rate_limits.key."),
    as_json: bool = typer.Option(False, "--json", help="Print the key's limits as JSON."),
) -> None:
    """Set a key's own daily budget and rate limit, counted across the server and every worker."""
    import math

    from workbench.store import api_keys, spend

    if usd_per_day is not None and not math.isfinite(usd_per_day):
        raise api_keys.KeyRequestError(f"--usd-per-day must be a finite number of dollars, not {usd_per_day}.")
    store = _open()
    try:
        with store.connection() as conn:
            found = spend.set_key_limits(conn, name, usd_per_day, per_minute)
    finally:
        store.close()
    if not found:
        raise api_keys.UnknownKey(f"No active key named {name[:80]!r}: `workbench keys list` shows them.")
    result = {"name": name, "budget_usd_per_day": usd_per_day, "rate_per_minute": per_minute}
    if as_json:
        print(json.dumps(result))
        return
    Console().print(f"{plain(name)}: {_limit(usd_per_day)} USD/day, {_limit(per_minute)} calls/min", highlight=False)
