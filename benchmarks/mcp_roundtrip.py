"""MCP tool-call round trip through the SDK's client, by transport, and the fs search tool over 10k files.

Rows:
  in memory          mcp.Client(server) in this process: the SDK's dispatch plus the profile check and the tool
  stdio              `python -m workbench mcp serve --no-store` as a child process, one session
  streamable HTTP    the HTTP app under uvicorn on a loopback port, one session
  search 10k files   search_files through the in-memory client over 10,000 small files in 100 folders (the tool
                     stops after 5,000 files a call: the row says how many it opened); "(uncapped)" lifts the
                     cap for this run to time the whole tree
Each transport row calls read_file on a small file `--calls` times after 5 warm-up calls; the session is
opened once. Results: benchmarks/results/mcp_roundtrip.json.
Usage: python benchmarks/mcp_roundtrip.py [--calls 200] [--searches 10]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import code_version, save, table

REPO = Path(__file__).resolve().parent.parent
WARMUP = 5


def timed_calls(target: Any, calls: int, name: str, args: dict) -> tuple[list[float], Any]:
    import anyio
    import mcp

    async def main() -> tuple[list[float], Any]:
        async with mcp.Client(target) as client:
            result = None
            for _ in range(WARMUP):
                result = await client.call_tool(name, args)
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                result = await client.call_tool(name, args)
                times.append((time.perf_counter() - start) * 1000)
            return times, result

    times, result = anyio.run(main)
    assert not result.is_error, result.content
    return times, result


def row(case: str, times: list[float], **extra: Any) -> dict:
    ordered = sorted(times)
    return {"case": case, "calls": len(times), "p50_ms": statistics.median(times),
            "p95_ms": ordered[min(len(ordered), math.ceil(len(ordered) * 0.95)) - 1],
            "mean_ms": statistics.fmean(times), **extra}


class HttpServer:
    def __init__(self, app: Any):
        import socket

        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}/mcp"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def make_tree(root: Path, files: int) -> None:
    for i in range(files):
        folder = root / f"d{i // 100:03d}"
        folder.mkdir(exist_ok=True)
        body = "".join(f"line {n} of file {i}: nothing to see\n" for n in range(20))
        (folder / f"f{i:05d}.txt").write_text(body + ("the needle is here\n" if i % 1000 == 999 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--searches", type=int, default=10)
    options = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="wb-bench-mcp-"))
    os.environ["WORKBENCH_HOME"] = str(home)
    import mcp

    from workbench import tools as wb_tools
    from workbench.mcp_server.profiles import default_profile
    from workbench.mcp_server.server import McpGateway
    from workbench.mcp_server.tools import Services, catalog
    from workbench.mcp_server.transports import http_app

    root = home / "root"
    root.mkdir()
    (root / "notes.txt").write_text("hello from the root\n")
    gateway = McpGateway(default_profile([root]), catalog(Services()))
    read = ("read_file", {"path": "notes.txt"})
    rows = []

    times, _ = timed_calls(gateway.server(), options.calls, *read)
    rows.append(row("in memory", times))

    env = {**os.environ, "PYTHONPATH": str(REPO), "WORKBENCH_HOME": str(home)}
    params = mcp.StdioServerParameters(command=sys.executable, env=env, cwd=str(REPO),
                                       args=["-m", "workbench", "mcp", "serve", "--no-store", "--root", str(root)])
    times, _ = timed_calls(params, options.calls, *read)
    rows.append(row("stdio", times))

    with HttpServer(http_app(gateway, "127.0.0.1", None)) as url:
        times, _ = timed_calls(url, options.calls, *read)
    rows.append(row("streamable HTTP", times))

    tree = home / "tree"
    tree.mkdir()
    started = time.perf_counter()
    make_tree(tree, 10_000)
    made_s = time.perf_counter() - started
    search_gateway = McpGateway(default_profile([tree]), catalog(Services()))
    search = ("search_files", {"text": "needle", "max_results": 200})
    times, result = timed_calls(search_gateway.server(), options.searches, *search)
    rows.append(row("search 10k files", times, files_searched=result.structured_content["files_searched"],
                    matches=len(result.structured_content["matches"])))
    capped, wb_tools.MAX_SEARCH_FILES = wb_tools.MAX_SEARCH_FILES, 20_000
    try:
        times, result = timed_calls(search_gateway.server(), options.searches, *search)
    finally:
        wb_tools.MAX_SEARCH_FILES = capped
    rows.append(row("search 10k files (uncapped)", times, files_searched=result.structured_content["files_searched"],
                    matches=len(result.structured_content["matches"])))

    print(table(rows, ["case", "calls", "p50_ms", "p95_ms", "mean_ms", "files_searched", "matches"]))
    path = save("mcp_roundtrip", rows, code=code_version(), tool="read_file (a 20-byte file)",
                tree_build_s=round(made_s, 2),
                note="2 shared cores, other work running: compare rows of one run, not across runs")
    print(f"saved {path}")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
