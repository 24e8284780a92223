"""`workbench ask` (one shot) and `workbench chat` (streaming terminal chat with history)."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console

import workbench
from workbench.cli.params import finite
from workbench.cli.text import plain
from workbench.errors import WorkbenchError
from workbench.messages import Completion

err = Console(stderr=True, soft_wrap=True)
MODEL_OPTION = typer.Option(None, "--model", "-m", help="provider:model or alias (default: WORKBENCH_MODEL).")


def _summary(c: Completion) -> str:
    cost = f"${c.cost_usd:.6f}" if c.cost_usd is not None else "unpriced"
    est = " (estimated)" if c.usage.estimated else ""
    return f"{c.model} · {c.usage.input_tokens}→{c.usage.output_tokens} tokens{est} · {cost} · {c.duration_ms / 1000:.1f} s"


def _stream_to_stdout(model, messages, **options) -> Completion:
    """Print deltas as they come; Ctrl-C stops this generation and keeps what was said."""
    stream = model.stream(messages, **options)
    try:
        for delta in stream:
            sys.stdout.write(delta)
            sys.stdout.flush()
    except KeyboardInterrupt:
        stream.close()
        sys.stdout.write("\n[generation stopped]")
    sys.stdout.write("\n")
    assert stream.completion is not None
    return stream.completion


def register(app: typer.Typer) -> None:
    @app.command()
    def ask(
        prompt: str = typer.Argument(..., help="The question or instruction."),
        model: str = MODEL_OPTION,
        as_json: bool = typer.Option(False, "--json", help="Print answer, usage, cost and latency as JSON."),
        max_tokens: int = typer.Option(None, "--max-tokens", min=1, help="Cap on generated tokens (at least 1)."),
        temperature: float = typer.Option(None, "--temperature", callback=finite, help="Sampling temperature."),
        system: str = typer.Option(None, "--system", help="A system prompt."),
    ) -> None:
        """Ask a model once; the answer streams to stdout."""
        m = workbench.get_model(model)
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        options = {"max_tokens": max_tokens, "temperature": temperature}
        if as_json:
            c = m.complete(messages, **options)
            print(json.dumps({
                "answer": c.text, "model": c.model, "finish_reason": c.finish_reason,
                "usage": {"input_tokens": c.usage.input_tokens, "output_tokens": c.usage.output_tokens,
                          "total_tokens": c.usage.total_tokens, "estimated": c.usage.estimated},
                "cost_usd": c.cost_usd, "cost_source": c.cost_source, "latency_ms": round(c.duration_ms, 1),
            }))
            return
        c = _stream_to_stdout(m, messages, **options)
        err.print(f"[dim]{plain(_summary(c))}[/]")

    @app.command()
    def chat(model: str = MODEL_OPTION,
             system: str = typer.Option(None, "--system", help="A system prompt for the whole chat.")) -> None:
        """Streaming terminal chat. /model NAME switches model, /reset clears history, /exit quits."""
        current = workbench.get_model(model)
        history: list[dict] = [{"role": "system", "content": system}] if system else []
        err.print(f"[bold]workbench chat[/] · {plain(current.model_id)} · /model NAME, /reset, /exit · Ctrl-C stops a reply")
        while True:
            try:
                line = input("you> ").strip()
            except EOFError:
                break
            except KeyboardInterrupt:
                err.print("\n(/exit or Ctrl-D to quit)")
                continue
            if not line:
                continue
            if line in ("/exit", "/quit"):
                break
            if line == "/reset":
                history = history[:1] if system else []
                err.print("history cleared")
                continue
            if line.startswith("/model"):
                name = line.removeprefix("/model").strip()
                try:
                    current = workbench.get_model(name or None)
                    err.print(f"model: {plain(current.model_id)}")
                except WorkbenchError as exc:
                    err.print(f"[red]{plain(exc)}[/]")
                continue
            history.append({"role": "user", "content": line})
            sys.stdout.write(f"{current.model_id}> ")
            try:
                c = _stream_to_stdout(current, history)
            except WorkbenchError as exc:
                history.pop()
                err.print(f"[red]error:[/] {plain(exc)}")
                continue
            history.append({"role": "assistant", "content": c.text})
            err.print(f"[dim]{plain(_summary(c))}[/]")
