"""`ollama:` — the official ollama client against OLLAMA_HOST."""

from __future__ import annotations

import functools
from typing import Any, Iterator

from workbench.config import get_settings
from workbench.errors import ProviderError, ProviderUnreachable, WorkbenchError
from workbench.messages import Completion, Usage
from workbench.providers import ProviderEntry, register
from workbench.providers._openai_compat import check_network
from workbench.providers.base import Model, ModelInfo

DEFAULT_HOST = "http://127.0.0.1:11434"


def host() -> str:
    value = get_settings().ollama_host or DEFAULT_HOST
    return value if "://" in value else f"http://{value}"


@functools.lru_cache(maxsize=8)
def _client(url: str, timeout: float) -> Any:
    import ollama

    return ollama.Client(host=url, timeout=timeout)


def _errors(fn):
    """Map the client's exceptions onto workbench's error tree."""

    def wrapper(*args, **kwargs):
        import httpx
        import ollama

        timeout = get_settings().request_timeout_s
        try:
            return fn(*args, **kwargs)
        except httpx.TimeoutException as exc:
            raise ProviderUnreachable("Ollama", host(), timeout, "timed out") from exc
        except (httpx.TransportError, ConnectionError) as exc:
            raise ProviderUnreachable("Ollama", host(), timeout, str(exc).splitlines()[0]) from exc
        except ollama.ResponseError as exc:
            raise ProviderError(f"Ollama answered HTTP {exc.status_code}: {exc.error}", status=exc.status_code) from exc

    return wrapper


class OllamaModel(Model):
    provider = "ollama"
    structured_output = "format_schema"

    def _kwargs(self, messages: list[dict], options: dict, stream: bool) -> dict[str, Any]:
        check_network(self.model_id, host())
        opts = {}
        for ours, theirs in (("temperature", "temperature"), ("max_tokens", "num_predict"), ("seed", "seed"), ("stop", "stop")):
            if ours in options:
                opts[theirs] = options[ours]
        kwargs: dict[str, Any] = {"model": self.name, "messages": messages, "options": opts, "stream": stream}
        if options.get("schema") is not None:
            kwargs["format"] = options["schema"]
        return kwargs

    @staticmethod
    def _usage(resp: Any) -> Usage:
        return Usage(getattr(resp, "prompt_eval_count", 0) or 0, getattr(resp, "eval_count", 0) or 0)

    @_errors
    def _complete(self, messages: list[dict], options: dict) -> Completion:
        resp = _client(host(), get_settings().request_timeout_s).chat(**self._kwargs(messages, options, False))
        if getattr(resp, "message", None) is None:
            raise ProviderError(f"{self.model_id} returned a malformed response (no message).")
        return Completion(
            text=resp.message.content or "", model=self.model_id, usage=self._usage(resp), finish_reason=resp.done_reason
        )

    def _stream(self, messages: list[dict], options: dict) -> tuple[Iterator[str], Any]:
        kwargs = self._kwargs(messages, options, True)
        state: dict[str, Any] = {"usage": Usage(), "finish": None}

        @_errors
        def start():
            return _client(host(), get_settings().request_timeout_s).chat(**kwargs)

        def deltas() -> Iterator[str]:
            for chunk in start():
                if chunk.done:
                    state["usage"], state["finish"] = self._usage(chunk), chunk.done_reason
                yield chunk.message.content or ""

        def finish(text: str) -> Completion:
            return Completion(text=text, model=self.model_id, usage=state["usage"], finish_reason=state["finish"])

        return deltas(), finish


@_errors
def _tags() -> list[str]:
    resp = _client(host(), min(get_settings().request_timeout_s, 2.0)).list()
    return [m.model for m in resp.models]


def _list() -> list[ModelInfo]:
    if not get_settings().ollama_host:
        return []
    try:
        names = _tags()
    except WorkbenchError as exc:
        return [ModelInfo(name="ollama:*", provider="ollama", source=host(), usable=False, reason=str(exc))]
    return [ModelInfo(name=f"ollama:{n}", provider="ollama", source=host(), usable=True, reason="served",
                      price="self-hosted") for n in names]


register(ProviderEntry("ollama", OllamaModel, _list))
