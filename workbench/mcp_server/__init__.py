"""The workbench as an MCP server (`workbench mcp serve`): the agents' typed tools, offered to MCP clients.

profiles (who may call what, over which folders) · tools (the catalog: workbench.tools' file tools and the
log, sandbox and task tools) · server (the SDK server, each call checked and recorded) · transports (stdio,
streamable HTTP behind the API key).
"""
