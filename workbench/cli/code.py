"""`workbench code "<task>" --language L --out DIR`: tests from the task, code that passes them.

Writes into DIR exactly the files the task names (solution and tests; defaults when it names none)
and prints a summary; `--json` prints it as one JSON object. Exit 0 when every test passed, 1 when
not (the best candidate is still written) or on a bad task, 2 on a bad option (an unknown language).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from workbench.cli.params import language_option
from workbench.cli.text import plain


def register(app: typer.Typer) -> None:
    @app.command("code")
    def code(
        task: str = typer.Argument(..., help="What to write, with its rules and examples (and file names)."),
        language: str = language_option("python"),
        out: Path = typer.Option(..., "--out", "-o", help="Directory the solution and tests are written to."),
        model: str = typer.Option(None, "--model", "-m", help="Model name or alias (default: WORKBENCH_MODEL)."),
        max_rounds: int = typer.Option(4, "--max-rounds", min=1, help="Code/fix rounds before giving up (at least 1)."),
        as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
    ) -> None:
        """Turn the task's rules into tests, write the code, run it in the sandbox, fix until it passes."""
        from workbench.code import parse_task, solve
        from workbench.errors import WorkbenchError

        parsed = parse_task(task, language)  # empty task / unknown language: one clear line, nothing run
        if out.exists() and not out.is_dir():
            raise WorkbenchError(f"--out {out} exists and is not a directory.")
        err = Console(stderr=True, highlight=False, soft_wrap=True)

        def progress(rnd) -> None:
            if as_json:
                return
            if rnd.kind == "tests":
                err.print(f"[dim]round {rnd.number} tests: {rnd.tests} test(s), {rnd.assertions} assertion(s)"
                          f"{' - ' + escape(rnd.error) if rnd.error else ''} ({rnd.tokens_out} tokens)[/]")
            else:
                state = "[green]pass[/]" if rnd.ok else f"[red]{rnd.passed}/{rnd.tests} passed[/]"
                err.print(f"[dim]round {rnd.number} {rnd.kind}:[/] {state}"
                          f"{' - ' + escape(rnd.error) if rnd.error else ''} [dim]({rnd.tokens_out} tokens, "
                          f"model {rnd.model_s:.1f} s, sandbox {rnd.sandbox_s:.1f} s)[/]")

        result = solve(parsed, model=model, max_rounds=max_rounds, on_round=progress)
        written = result.write(out)
        summary = {**result.summary(), "out": str(out), "written": [str(p) for p in written]}
        if as_json:
            print(json.dumps(summary, indent=1))
        else:
            status = "[green]passed[/]" if result.ok else f"[red]not passed[/] ({plain(result.stop_reason)})"
            coverage = f"{summary['coverage']:.0f}%" if summary["coverage"] is not None else "n/a"
            err.print(f"{status} · rounds {summary['rounds']} · tests {summary['tests_passed']}/{summary['tests_run']}"
                      f" · coverage {coverage} · tokens {summary['tokens_in']}+{summary['tokens_out']}"
                      f" · ${summary['cost_usd']:.6f} · {summary['seconds']:.1f} s · {plain(result.model)}")
            for path in written:
                print(path)
        if not result.ok:
            raise typer.Exit(1)
