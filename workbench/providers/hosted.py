"""`HostedModel`: a Model whose work runs in a model host (model_host.py), never in the calling process.

A provider subclasses it and names the Model class the host runs (`host_target`) and its arguments
(`host_config`); the caller-side object only prepares requests and rebuilds the answers. The local
llama.cpp model and the crash-test model (`test:segv`) both go through here, so a test of the crash path
tests the production path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from workbench.messages import Completion, Usage
from workbench.providers import model_host
from workbench.providers.base import Model, estimate_tokens

CANCEL_WAIT_S = 10.0  # a stopped stream: how long to wait for the host's final count (usage, CPU time)


def completion_from(data: dict) -> Completion:
    return Completion(**{**data, "usage": Usage(**data["usage"])})


class HostedModel(Model):
    host_target = ""  # "module:Class" of the Model subclass the host builds and calls
    crash_where = "native code"  # what the crash message says crashed
    crash_advice = ""  # how to fix a crash that happens again

    def host_config(self) -> dict[str, Any]:
        """Keyword arguments of `host_target(name, **config)`; part of the host's identity."""
        return {}

    def host(self) -> model_host.ModelHost:
        spec = model_host.HostSpec.of(self.host_target, self.name, self.host_config(), label=self.model_id,
                                      where=self.crash_where, advice=self.crash_advice)
        return model_host.host_for(spec)

    def count_tokens(self, text: str) -> int:
        with self.host().call("count_tokens", text=text) as call:
            return int(call.result())

    def host_stats(self) -> dict[str, Any]:
        """What the hosted model reports about itself (for a local model: its prompt cache); {} if nothing."""
        with self.host().call("stats") as call:
            return dict(call.result())

    def _complete(self, messages: list[dict], options: dict) -> Completion:
        with self.host().call("complete", messages=messages, options=options) as call:
            return completion_from(call.result())

    def _stream(self, messages: list[dict], options: dict) -> tuple[Iterator[str], Any]:
        host = self.host()
        state: dict[str, Any] = {}

        def deltas() -> Iterator[str]:
            with host.call("stream", messages=messages, options=options) as call:
                try:
                    while not call.done:
                        message = call.next()
                        if "delta" in message:
                            yield message["delta"]
                        else:
                            state["completion"] = completion_from(message["result"])
                finally:
                    if not call.done:  # the caller stopped reading: stop the host, keep its count
                        call.cancel()
                        state["completion"] = _final(call)

        def finish(text: str) -> Completion:
            done = state.get("completion")
            if done is not None:
                return done
            # Nothing came back (the host died, or the stream never started): what was delivered, estimated.
            return Completion(text=text, model=self.model_id, usage=Usage(0, estimate_tokens(text), estimated=True),
                              finish_reason="error")

        return deltas(), finish


def _final(call: model_host.Call) -> Completion | None:
    try:
        return completion_from(call.result(timeout=CANCEL_WAIT_S))
    except Exception:  # noqa: BLE001 - best effort: the caller already has the text it read
        return None
