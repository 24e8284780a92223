"""Run the notebooks and render them, outputs and plots included, to HTML pages of the documentation site:

    python scripts/render_notebooks.py                      # all five, on the small local model
    python scripts/render_notebooks.py --only 03 --only 05  # some of them
    python scripts/render_notebooks.py --model test:echo --out /tmp/pages   # a quick dry run, no real model

Every notebook runs under papermill (as a test or a pipeline would) in ONE fresh temporary WORKBENCH_HOME,
never the user's: 01 asks the model, 03 and 05 run a small workload through `workbench.map`, 04 runs a
tiny experiment of two configurations, then the home is synced and 02 reads the analytics snapshot. So
the later notebooks analyse the calls the earlier ones made, and every number on the pages is a real run
on this machine (with the model named in each page's injected-parameters cell). The pages land in
docs/notebooks/NN_name.html, which docs/how-to/notebooks.md links to (`make notebooks-html`); 05 also
saves its dashboard as a standalone page (05_panel_dashboard.dashboard.html, its JavaScript inline).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_MODEL = "local:qwen2.5-coder-0.5b"
OUT = ROOT / "docs" / "notebooks"
WORKLOAD = ["Write a Python function that reverses a string.", "What does the Python `zip` builtin do?",
            "Write a SQL query that counts rows per day.", "Name three sorting algorithms.",
            "Write a Python function is_prime(n).", "Explain a Dask future in one sentence.",
            "Write a regular expression for an ISO date.", "What is a Python generator? One sentence."]


def parameters(model: str, out: Path) -> dict[str, dict]:
    """Each notebook's papermill parameters (in the order they run) for `model`; pages go to `out`."""
    return {
        "01_quickstart": {"model": model, "other_model": model, "max_tokens": 80},
        "03_costs_and_anomalies": {"workload": WORKLOAD, "workload_model": model},
        "04_experiment": {"config_a": {"name": "greedy", "model": model, "temperature": 0, "max_tokens": 16},
                          "config_b": {"name": "hot", "model": model, "temperature": 1.2, "seed": 7,
                                       "max_tokens": 16}},
        "05_panel_dashboard": {"workload": {model: WORKLOAD[:3]},
                               "save_to": str(out / "05_panel_dashboard.dashboard.html")},
        "02_execution_log": {},
    }


def render(names: list[str], model: str, out: Path) -> list[Path]:
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    from workbench.config import reload_settings
    from workbench.store import close_store, open_store
    from workbench.store import postgres as embedded
    from workbench.store.sync import Syncer

    home = Path(tempfile.mkdtemp(prefix="wb-notebooks-"))
    home.chmod(0o755)  # the embedded Postgres runs as its own user
    os.environ["WORKBENCH_HOME"] = str(home)  # the kernels inherit it (the `python3` kernel: not the user's home)
    reload_settings()
    out.mkdir(parents=True, exist_ok=True)
    work = home / "executed"
    work.mkdir()
    exporter = HTMLExporter(template_name="lab")
    written = []
    try:
        store = open_store()  # held here, so every kernel attaches to the same Postgres
        for name, params in parameters(model, out.resolve()).items():
            if name[:2] not in names:
                continue
            if name == "02_execution_log":
                Syncer(store).sync_once()  # 02 reads the analytics snapshot the sync publishes
            started = time.monotonic()
            executed = work / f"{name}.ipynb"
            papermill.execute_notebook(str(ROOT / "notebooks" / f"{name}.ipynb"), str(executed), parameters=params,
                                       kernel_name="python3", cwd=str(ROOT), progress_bar=False)
            body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
            page = out / f"{name}.html"
            page.write_text(body, encoding="utf-8")
            written.append(page)
            print(f"{page.relative_to(out.parent) if out.parent in page.parents else page}: "
                  f"{time.monotonic() - started:.0f} s, {page.stat().st_size / 1e6:.1f} MB", flush=True)
    finally:
        close_store()
        embedded.stop(home / "postgres")
        shutil.rmtree(home, ignore_errors=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"the model every notebook uses ({DEFAULT_MODEL})")
    parser.add_argument("--only", action="append", choices=["01", "02", "03", "04", "05"],
                        help="render only these notebooks (repeat); default: all")
    parser.add_argument("--out", type=Path, default=OUT, help="where the pages go (docs/notebooks)")
    args = parser.parse_args(argv)
    render(args.only or ["01", "02", "03", "04", "05"], args.model, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
