"""A tiny MCP server over stdio for the tests: the agents' external MCP server. `hang` never answers and
`die` exits mid-call, so the client's timeout and failure handling can be seen."""

import os
import sys
import time

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

app = MCPServer("tiny")


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool()
def note(text: str) -> str:
    """Keep a note (answers with what it kept)."""
    return f"noted: {text}"


@app.tool()
def hang() -> str:
    """Never answers."""
    time.sleep(3600)
    return "late"


@app.tool()
def die() -> str:
    """Exits in the middle of the call."""
    sys.stdout.flush()
    os._exit(3)


if __name__ == "__main__":
    app.run()
