"""The model host's own side: `python -m workbench.providers.host_process TARGET NAME CONFIG PARENT_PID`.

It imports the Model class named by TARGET ("package.module:Class"), builds it once with
`Class(NAME, **CONFIG)` (for llama.cpp: loads the weights), says it is ready, then answers requests read
from stdin, one JSON object per line, in order, on its main thread (so generation is serialised, as one
llama.cpp context requires). See model_host.py for the protocol and why it is a subprocess.

A reader thread owns stdin: it queues requests, marks cancelled streams, and ends the process when stdin
closes or the parent is gone, so a host never outlives its caller. Ctrl-C in a terminal reaches the whole
foreground process group; the host ignores SIGINT, so only the caller decides what a Ctrl-C stops.
"""

from __future__ import annotations

import faulthandler
import importlib
import json
import os
import queue
import signal
import sys
import threading
import time
import traceback
from dataclasses import asdict
from typing import Any, BinaryIO

PARENT_POLL_S = 1.0  # how often the host checks that its parent still exists (besides stdin's EOF)


def load_class(target: str) -> type:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def encode_error(exc: BaseException) -> dict[str, Any]:
    """An exception as data the caller can raise again as the same type (see model_host.decode_error)."""
    attrs = {}
    for key, value in vars(exc).items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            continue
        attrs[key] = value
    return {"module": type(exc).__module__, "type": type(exc).__name__, "message": str(exc), "attrs": attrs,
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}


class Host:
    def __init__(self, model: Any, out: BinaryIO):
        self.model, self.out = model, out
        self.requests: queue.Queue[dict] = queue.Queue()
        self.cancelled: set[int] = set()

    def send(self, message: dict) -> None:
        self.out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
        self.out.flush()

    def read_stdin(self, stdin: BinaryIO) -> None:
        for line in stdin:
            message = json.loads(line)
            if message.get("op") == "cancel":
                self.cancelled.add(message["id"])
            else:
                self.requests.put(message)
        os._exit(0)  # stdin closed: the caller is gone or done with this host

    def serve(self) -> None:
        while True:
            request = self.requests.get()
            rid = request["id"]
            try:
                OPS[request["op"]](self, request)
            except Exception as exc:  # noqa: BLE001 - every failure goes back to the caller, typed
                self.send({"id": rid, "error": encode_error(exc)})
            self.cancelled.discard(rid)


def watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(0)  # re-parented: the caller died without closing stdin (a forked copy of it may hold it open)


def _complete(host: Host, request: dict) -> None:
    completion = host.model._complete(request["messages"], request["options"])
    host.send({"id": request["id"], "result": asdict(completion)})


def _stream(host: Host, request: dict) -> None:
    rid = request["id"]
    deltas, finish = host.model._stream(request["messages"], request["options"])
    parts: list[str] = []
    try:
        for delta in deltas:
            if rid in host.cancelled:
                break
            if delta:
                parts.append(delta)
                host.send({"id": rid, "delta": delta})
    finally:
        close = getattr(deltas, "close", None)
        if close:
            close()
    host.send({"id": rid, "result": asdict(finish("".join(parts)))})


def _count_tokens(host: Host, request: dict) -> None:
    host.send({"id": request["id"], "result": host.model.count_tokens(request["text"])})


def _stats(host: Host, request: dict) -> None:
    stats = getattr(host.model, "host_stats", None)
    host.send({"id": request["id"], "result": stats() if stats is not None else {}})


OPS = {"complete": _complete, "stream": _stream, "count_tokens": _count_tokens, "stats": _stats}


def main(argv: list[str]) -> None:
    target, name, config, parent_pid = argv[1], argv[2], json.loads(argv[3]), int(argv[4])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    faulthandler.enable()  # a native crash leaves the Python stack on stderr, which the caller keeps a tail of
    # The protocol gets its own copy of stdout; fd 1 then points at stderr, so a stray print() from model
    # code (or a C library writing to stdout) cannot corrupt the protocol.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    stdin = os.fdopen(os.dup(0), "rb")
    threading.Thread(target=watch_parent, args=(parent_pid,), daemon=True).start()
    start = time.perf_counter()
    try:
        model = load_class(target)(name, **config)
    except Exception as exc:  # noqa: BLE001 - a load failure is an answer too (e.g. missing library)
        out.write(json.dumps({"ready": False, "error": encode_error(exc)}).encode() + b"\n")
        out.flush()
        os._exit(1)
    host = Host(model, out)
    host.send({"ready": True, "pid": os.getpid(), "load_s": round(time.perf_counter() - start, 3)})
    threading.Thread(target=host.read_stdin, args=(stdin,), daemon=True).start()
    host.serve()


if __name__ == "__main__":
    main(sys.argv)
