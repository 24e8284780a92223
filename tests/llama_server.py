"""A real OpenAI-compatible server for the provider tests: llama.cpp's own server with a small model.

The groq SDK calls <base>/openai/v1/..., so those paths are routed to the same app.
Run: python tests/llama_server.py MODEL_PATH PORT
"""

from __future__ import annotations

import sys

import uvicorn
from llama_cpp.server.app import create_app
from llama_cpp.server.settings import ModelSettings, ServerSettings


def strip_openai_prefix(app):
    async def routed(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/openai/"):
            path = scope["path"][len("/openai"):]
            scope = dict(scope, path=path, raw_path=path.encode())
        await app(scope, receive, send)

    return routed


def main(model_path: str, port: int) -> None:
    app = create_app(
        server_settings=ServerSettings(host="127.0.0.1", port=port),
        model_settings=[ModelSettings(model=model_path, model_alias="small", n_ctx=2048, n_threads=2, verbose=False)],
    )
    uvicorn.run(strip_openai_prefix(app), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
