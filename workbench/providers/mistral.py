"""`mistral:` — the official mistralai SDK; WORKBENCH_MISTRAL_BASE_URL (server_url) for compatible endpoints."""

from __future__ import annotations

import functools
from typing import Any, Iterator

from workbench.config import get_settings
from workbench.errors import NeedsKeyError, ProviderError, ProviderUnreachable
from workbench.messages import Completion, Usage
from workbench.providers import ProviderEntry, register
from workbench.providers._openai_compat import check_network, response_format, retry_after
from workbench.providers.base import Model, estimate_tokens, listed_cloud_models

DEFAULT_URL = "https://api.mistral.ai"


@functools.lru_cache(maxsize=8)
def _client(key: str, base_url: str, timeout: float) -> Any:
    from mistralai.client import Mistral

    return Mistral(api_key=key, server_url=base_url, timeout_ms=int(timeout * 1000))


class MistralModel(Model):
    provider = "mistral"

    def __init__(self, name: str):
        super().__init__(name)
        self.structured_output = get_settings().mistral_structured_output

    @property
    def base_url(self) -> str:
        return get_settings().mistral_base_url or DEFAULT_URL

    def client(self) -> Any:
        settings = get_settings()
        if settings.mistral_api_key is None:
            raise NeedsKeyError("Mistral", "MISTRAL_API_KEY")
        return _client(settings.mistral_api_key.get_secret_value(), self.base_url, settings.request_timeout_s)

    def _body(self, messages: list[dict], options: dict) -> dict[str, Any]:
        self.client()  # a missing key is the first thing to tell the user
        check_network(self.model_id, self.base_url)
        body: dict[str, Any] = {"model": self.name, "messages": messages}
        for ours, theirs in (("temperature", "temperature"), ("max_tokens", "max_tokens"), ("seed", "random_seed"), ("stop", "stop")):
            if ours in options:
                body[theirs] = options[ours]
        if options.get("schema") is not None:
            body["response_format"] = response_format(self.structured_output, options["schema"])
        return body

    def _call(self, method: str, body: dict[str, Any]) -> Any:
        import httpx2 as httpx  # mistralai 3.x ships its own httpx fork
        from mistralai.client.errors import MistralError

        try:
            return getattr(self.client().chat, method)(**body)
        except httpx.TimeoutException as exc:
            raise ProviderUnreachable("Mistral", self.base_url, get_settings().request_timeout_s, "timed out") from exc
        except httpx.TransportError as exc:
            raise ProviderUnreachable("Mistral", self.base_url, get_settings().request_timeout_s, str(exc)) from exc
        except MistralError as exc:
            raise ProviderError(f"{self.model_id} answered HTTP {exc.status_code}: {exc.message}",
                                status=exc.status_code, retry_after=retry_after(exc.headers)) from exc

    def _complete(self, messages: list[dict], options: dict) -> Completion:
        resp = self._call("complete", self._body(messages, options))
        if not getattr(resp, "choices", None):
            raise ProviderError(f"{self.model_id} returned a malformed response (no choices).")
        choice = resp.choices[0]
        text = choice.message.content or ""
        if resp.usage is not None:
            usage = Usage(resp.usage.prompt_tokens or 0, resp.usage.completion_tokens or 0)
        else:
            usage = Usage(sum(estimate_tokens(m["content"]) for m in messages), estimate_tokens(text), estimated=True)
        return Completion(text=str(text), model=self.model_id, usage=usage, finish_reason=str(choice.finish_reason or ""))

    def _stream(self, messages: list[dict], options: dict) -> tuple[Iterator[str], Any]:
        body = self._body(messages, options)
        state: dict[str, Any] = {"usage": None, "finish": None}

        def deltas() -> Iterator[str]:
            for event in self._call("stream", body):
                chunk = event.data
                if getattr(chunk, "usage", None):
                    state["usage"] = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                if chunk.choices:
                    state["finish"] = chunk.choices[0].finish_reason or state["finish"]
                    content = chunk.choices[0].delta.content
                    yield content if isinstance(content, str) else ""

        def finish(text: str) -> Completion:
            usage = state["usage"] or Usage(
                sum(estimate_tokens(m["content"]) for m in messages), estimate_tokens(text), estimated=True
            )
            return Completion(text=text, model=self.model_id, usage=usage, finish_reason=str(state["finish"] or "stop"))

        return deltas(), finish


def _list():
    return listed_cloud_models("mistral", get_settings().mistral_api_key is not None, "MISTRAL_API_KEY")


register(ProviderEntry("mistral", MistralModel, _list))
