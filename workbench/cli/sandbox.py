"""`workbench sandbox exec`: run a file or a directory in the sandbox and report what happened.

Exit status: 0 when the program succeeded (or every test passed, at least one), 1 when it failed,
timed out or was killed, 3 when the security scan blocked it; a bad argument is one line on stderr
and exit 1, or 2 for what parsing refuses (an unknown language, a timeout that is not a number).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from workbench.cli.params import finite, language_option

sandbox_app = typer.Typer(help="Run code in the sandbox (bubblewrap by default).", no_args_is_help=True)

BLOCKED_EXIT = 3


@sandbox_app.command("exec")
def exec_(
    path: Path = typer.Argument(..., help="A source file or a directory (its tests run when it has any)."),
    language: str = language_option(...),
    timeout: float = typer.Option(None, "--timeout", callback=finite, help="Wall-clock limit in seconds."),
    memory: int = typer.Option(None, "--memory", help="Memory limit in MiB."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as one JSON object."),
    allow_high: bool = typer.Option(False, "--allow-high-severity",
                                    help="Run Python even when bandit finds high-severity issues."),
    no_format: bool = typer.Option(False, "--no-format", help="Do not format the files before tests."),
) -> None:
    """Run PATH in the sandbox: tests (JUnit report, coverage) for a test file or a directory with
    tests, else the program (main.py, main.ts, Main.java, or the file itself)."""
    from workbench.errors import SandboxError
    from workbench.sandbox import default_limits
    from workbench.sandbox.runtimes import get_runtime, run_path

    runtime = get_runtime(language)  # unknown language: one clear line before anything else
    if timeout is not None and timeout <= 0 or memory is not None and memory < 16:
        raise SandboxError("--timeout must be > 0 seconds and --memory at least 16 MiB.")
    limits = default_limits().merged(timeout_s=timeout, memory_mb=memory)
    options = {"limits": limits, "allow_high": allow_high}
    if no_format:
        options["format"] = False
    run = run_path(runtime.name, path, **options)
    if as_json:
        print(json.dumps(run.as_dict(), indent=1, default=str))
    else:
        _print(run)
    if run.blocked:
        raise typer.Exit(BLOCKED_EXIT)
    if not run.ok:
        raise typer.Exit(1)


def _print(run) -> None:
    out, err = Console(highlight=False, soft_wrap=True), Console(stderr=True, highlight=False, soft_wrap=True)
    if run.scan and run.scan.findings:
        err.print(f"[bold]security scan[/] ({run.scan.tool}): {len(run.scan.findings)} finding(s)")
        for f in run.scan.findings[:20]:
            style = "red" if f.severity == "HIGH" else "yellow"
            err.print(f"  [{style}]{f.severity}[/] {escape(str(f))}")
    r = run.result
    if r is not None:
        if r.stdout:
            out.print(escape(r.stdout), end="")
        if r.stderr:
            err.print(escape(r.stderr), end="")
    if run.report is not None and run.report.tests:
        table = Table("test", "status", "error", box=None)
        for case in run.report.cases:
            style = {"passed": "green", "skipped": "dim"}.get(case.status, "red")
            table.add_row(escape(case.id), f"[{style}]{case.status}[/]", escape(case.error_type))
        err.print(table)
    status = "[green]ok[/]" if run.ok else ("[red]BLOCKED[/]" if run.blocked else "[red]FAILED[/]")
    parts = [f"{run.language} {run.kind}: {status}"]
    if r is not None:
        parts.append(f"exit {r.exit_code}, {r.duration_s:.2f} s, {r.backend}")
    if run.report is not None:
        rep = run.report
        parts.append(f"{rep.passed}/{rep.tests} passed" + (f", {rep.failed} failed" if rep.failed else "")
                     + (f", {rep.errors} errors" if rep.errors else ""))
        parts.append(f"coverage {run.coverage:.1f}%" if run.coverage is not None
                     else f"coverage n/a ({run.coverage_note})")
    err.print(" · ".join(parts))
    if r is not None and r.killed_reason:
        err.print(f"[red]killed:[/] {escape(r.killed_reason)}")
    if run.report is not None and run.report.problem:
        err.print(f"[yellow]report:[/] {escape(run.report.problem)}")
    for note in run.notes + (r.notes if r is not None else []):
        err.print(f"[dim]note: {escape(note)}[/]")


def register(app: typer.Typer) -> None:
    app.add_typer(sandbox_app, name="sandbox")
