"""Model hosts: a model's native code (llama.cpp) runs in a child process, so a crash in it (SIGSEGV in
`decode` on a CPU the build does not fit) ends that child, never the server, Dask worker or CLI calling it.

One host per HostSpec (Model class, model name, config such as weights file, n_ctx, n_threads) per
process, started on first use and reused, so the weights load once. A host that died is replaced on the
next call; the call that was running raises `ModelCrashed` naming the signal.

Why a subprocess speaking JSON lines, not multiprocessing: Dask runs its workers as daemonic processes,
which multiprocessing forbids to have children; a plain `python -m` child needs no pickling of the
caller's state, inherits none of its Python signal handlers or threads, and its protocol is readable:

    caller -> host   {"id": 7, "op": "complete" | "stream" | "count_tokens" | "stats", ...}   {"op": "cancel", "id": 7}
    host -> caller   {"ready": true, "pid": ..., "load_s": ...}  (once, after the model loaded)
                     {"id": 7, "delta": "text"} ...   {"id": 7, "result": ...}   {"id": 7, "error": {...}}

Requests carry ids and a reader thread routes answers to their caller, so an abandoned stream (cancel
sent) or a Ctrl-C while waiting never leaves the pipe out of step. The host answers requests one at a time,
which serialises generation per model as llama.cpp needs.
"""

from __future__ import annotations

import atexit
import builtins
import collections
import importlib
import itertools
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from workbench.errors import ModelCrashed, WorkbenchError

log = logging.getLogger(__name__)
PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # so `python -m workbench...` works from any cwd
EXIT_WAIT_S = 5.0  # after the host's stdout closed: how long it may take to exit before it is killed
STDERR_LINES = 40  # tail of the host's stderr kept for the log when it dies
_DIED = object()


@dataclass(frozen=True)
class HostSpec:
    """What a host runs: `target` ("module:Class", a Model subclass) built as `Class(name, **config)`.
    Two specs with the same target, name and config share one host."""

    target: str
    name: str
    config: str = "{}"  # JSON, sorted keys (hashable)
    label: str = field(default="", compare=False)  # the model id in messages
    where: str = field(default="native code", compare=False)  # what crashed, in messages
    advice: str = field(default="", compare=False)  # how to fix a repeated crash

    @classmethod
    def of(cls, target: str, name: str, config: dict | None = None, **text: str) -> HostSpec:
        return cls(target, name, json.dumps(config or {}, sort_keys=True), **text)


def describe_exit(returncode: int) -> str:
    from workbench.smoke import describe_exit as describe

    return describe(returncode)


def decode_error(data: dict, label: str) -> BaseException:
    """The host's exception as the same type here: workbench errors keep their class and attributes
    (ContextTooLong stays a 413, ProviderError keeps its status); builtin ones (ValueError) their class."""
    module, name, message = data["module"], data["type"], data["message"]
    cls: Any = None
    if module.startswith("workbench."):
        cls = getattr(importlib.import_module(module), name, None)
    elif module == "builtins":
        cls = getattr(builtins, name, None)
    if isinstance(cls, type) and issubclass(cls, WorkbenchError):
        exc = cls.__new__(cls)
        Exception.__init__(exc, message)
        exc.__dict__.update(data.get("attrs") or {})
        return exc
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls, message = RuntimeError, f"{module}.{name}: {message}"
    exc = cls(message)
    exc.add_note(f"raised in the model host of {label}:\n{data.get('traceback', '')}")
    return exc


WAIT_SLICE_S = 0.2  # how long a waiting caller goes without looking at pending signals


class Call:
    """One request in flight: its answers, in order, as they arrive."""

    def __init__(self, host: ModelHost, rid: int):
        self.host, self.id = host, rid
        # SimpleQueue, not Queue: a Ctrl-C raised inside Queue.get can leave that queue's Python-level lock
        # held, and the reader thread then blocks in put() forever (every later answer from the host lost).
        # SimpleQueue's get and put are C calls, atomic to signals.
        self.answers: queue.SimpleQueue = queue.SimpleQueue()
        self.done = False

    def next(self, timeout: float | None = None) -> dict:
        """The next {"delta": ...} or {"result": ...}; raises the host's error, or ModelCrashed if it died."""
        message = self._get(timeout)
        if message is _DIED:
            self.done = True
            raise self.host.crashed()
        if "error" in message:
            self.done = True
            raise decode_error(message["error"], self.host.spec.label)
        self.done = "result" in message
        return message

    def _get(self, timeout: float | None) -> dict:
        # In slices: a blocked lock wait is woken by a signal only when the signal reaches this thread, so a
        # Ctrl-C delivered to the reader thread would wait for the host's answer; each slice returns to the
        # interpreter, which raises the pending KeyboardInterrupt.
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = WAIT_SLICE_S if deadline is None else min(WAIT_SLICE_S, deadline - time.monotonic())
            try:
                return self.answers.get(timeout=max(left, 0.0))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def result(self, timeout: float | None = None) -> Any:
        while True:
            message = self.next(timeout)
            if self.done:
                return message["result"]

    def cancel(self) -> None:
        """Ask the host to stop this request between tokens (a stream the caller stopped reading)."""
        self.host.send({"op": "cancel", "id": self.id})

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.host.forget(self.id)


class ModelHost:
    """One child process hosting one model. Thread-safe; requests queue in the child."""

    def __init__(self, spec: HostSpec):
        self.spec = spec
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self.returncode: int | None = None
        self._pending: dict[int, Call] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (PACKAGE_ROOT, os.environ.get("PYTHONPATH"))
                                                           if p)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workbench.providers.host_process", spec.target, spec.name, spec.config,
             str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self._stderr = threading.Thread(target=self._drain_stderr, name=f"model-host-stderr-{self.proc.pid}",
                                        daemon=True)
        self._stderr.start()
        try:
            ready = self._ready()
        except BaseException:
            self.close()
            raise
        self.pid, self.load_s = ready["pid"], ready["load_s"]
        threading.Thread(target=self._read, name=f"model-host-{self.pid}", daemon=True).start()

    def _ready(self) -> dict:
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        message = json.loads(line) if line else {}
        if message.get("ready"):
            return message
        self.proc.stdout.close()  # type: ignore[union-attr]
        self._reap(quiet=bool(message))  # a load error says why itself; no crash to log
        raise decode_error(message["error"], self.spec.label) if message else self.crashed(" while loading the model")

    @property
    def alive(self) -> bool:
        return self.returncode is None and self.proc.poll() is None

    def call(self, op: str, **payload: Any) -> Call:
        """Send a request; read its answers from the returned Call (use it as a context manager)."""
        with self._lock:
            if not self.alive:
                raise self.crashed()
            rid = next(self._ids)
            call = self._pending[rid] = Call(self, rid)
        try:
            self.send({"id": rid, "op": op, **payload})
        except BaseException:
            self.forget(rid)
            raise
        return call

    def send(self, message: dict) -> None:
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        try:
            with self._write_lock:
                self.proc.stdin.write(data)  # type: ignore[union-attr]
                self.proc.stdin.flush()  # type: ignore[union-attr]
        except (BrokenPipeError, ValueError, OSError):
            if message.get("op") == "cancel":
                return  # nothing left to stop
            self._reap()
            raise self.crashed() from None

    def forget(self, rid: int) -> None:
        with self._lock:
            self._pending.pop(rid, None)

    def crashed(self, during: str = "") -> ModelCrashed:
        code = self.returncode
        how = describe_exit(code) if code is not None else "ended unexpectedly"
        last = next((line for line in reversed(self.stderr_tail) if line.strip()), "")
        if code is not None and code >= 0 and last:  # an exit, not a signal: its last words say why
            how += f": {last.strip()[:200]}"
        return ModelCrashed(self.spec.label, how, self.spec.where, self.spec.advice, during)

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            try:
                message = json.loads(line)
            except ValueError:
                log.warning("model host %s sent an unreadable line: %r", self.spec.label, line[:200])
                continue
            with self._lock:
                call = self._pending.get(message.get("id"))
            if call is not None:  # answers to a request nobody waits for (cancelled) are dropped
                call.answers.put(message)
        self.proc.stdout.close()  # type: ignore[union-attr]
        self._reap()
        with self._lock:
            calls = list(self._pending.values())
        for call in calls:
            call.answers.put(_DIED)

    def _reap(self, quiet: bool = False) -> None:
        """The host's stdout closed: collect its exit status (killing it if it lingers)."""
        try:
            code = self.proc.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._stderr.join(1.0)  # its stderr ends with it: keep the last lines for the error
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass  # a write to the dead host was cut off: nothing to flush
        with self._lock:
            first, self.returncode = self.returncode is None, code
        if first and code != 0 and not quiet:  # one line here; the native stack dump only at debug level
            log.warning("model host of %s (pid %s) ended with %s", self.spec.label, self.proc.pid,
                        describe_exit(code))
            log.debug("its last output:\n%s", "\n".join(self.stderr_tail))

    def _drain_stderr(self) -> None:
        for raw in self.proc.stderr:  # type: ignore[union-attr]
            line = raw.decode("utf-8", "replace").rstrip()
            self.stderr_tail.append(line)
            log.debug("model host %s: %s", self.spec.label, line)
        self.proc.stderr.close()  # type: ignore[union-attr]

    def close(self) -> None:
        """Close stdin (the host exits on EOF) and wait for it; kill it if it does not go."""
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        try:
            self.proc.wait(EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_HOSTS: dict[HostSpec, ModelHost] = {}
_HOSTS_LOCK = threading.Lock()


def host_for(spec: HostSpec) -> ModelHost:
    """The running host for `spec`, started now if there is none or the last one died."""
    with _HOSTS_LOCK:
        host = _HOSTS.get(spec)
        if host is None or not host.alive:
            host = _HOSTS[spec] = ModelHost(spec)
        return host


def running() -> list[ModelHost]:
    with _HOSTS_LOCK:
        return [h for h in _HOSTS.values() if h.alive]


@atexit.register
def close_all() -> None:
    with _HOSTS_LOCK:
        hosts = list(_HOSTS.values())
        _HOSTS.clear()
    for host in hosts:
        host.close()


# A forked copy of this process must not think it owns (or close) its parent's hosts.
os.register_at_fork(after_in_child=_HOSTS.clear)
