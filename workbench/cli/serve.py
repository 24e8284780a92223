"""`workbench serve`: ONE process on 127.0.0.1:5006 — Panel pages, /health, the API."""

from __future__ import annotations

import typer

from workbench.config import get_settings
from workbench.errors import ConfigError


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: str = typer.Option(None, "--host", help="Bind address (default WORKBENCH_HOST, 127.0.0.1)."),
        port: int = typer.Option(None, "--port", min=1, max=65535, help="Port, 1 to 65535 (default WORKBENCH_PORT, 5006)."),
        model: str = typer.Option(None, "--model", "-m", help="Default model for the served app."),
    ) -> None:
        """Serve the workbench: chat and dashboards, /health, REST + WebSocket API."""
        import os

        import uvicorn

        from workbench.config import reload_settings

        if model:
            os.environ["WORKBENCH_MODEL"] = model
        settings = reload_settings() if model else get_settings()
        host = host or settings.host
        port = port or settings.port
        if not 1 <= port <= 65535:
            raise ConfigError(f"WORKBENCH_PORT={port} is not a TCP port: set it to a number from 1 to 65535 "
                              f"(or pass --port).")
        from workbench.server.guards import is_loopback

        if not is_loopback(host) and settings.api_key is None and not _stored_keys():
            raise ConfigError(
                f"Binding to {host} exposes the workbench beyond this machine: set WORKBENCH_API_KEY to a non-empty "
                f"secret or create a key (`workbench keys create NAME --scope admin`) first (a key is then required "
                f"on every request), or bind to 127.0.0.1."
            )
        from workbench.server.app import create_app

        print(f"workbench serving on http://{host}:{port}  (chat: /chat, health: /health)", flush=True)
        uvicorn.run(create_app(host), host=host, port=port, log_level="warning", ws="websockets")


def _stored_keys() -> int:
    """How many active keys `workbench keys` has stored (0 when the store cannot say)."""
    import warnings

    from workbench.store import Store, api_keys

    try:
        with warnings.catch_warnings():  # the embedded server's import warns about XDG_RUNTIME_DIR: not ours
            warnings.simplefilter("ignore")
            store = Store.open(pool_size=1, writer=False)
    except Exception:
        return 0
    try:
        return len(api_keys.load(store).keys)
    finally:
        store.close()
