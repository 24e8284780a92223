"""Shared body of the providers whose official SDKs speak the OpenAI chat-completions shape
(the `openai` and `groq` SDKs). Each provider file only builds its client and declares its options.
"""

from __future__ import annotations

from typing import Any, Iterator

from workbench.config import get_settings
from workbench.errors import NetworkBlocked, ProviderError, ProviderUnreachable
from workbench.hosts import is_loopback_url
from workbench.messages import Completion, Usage
from workbench.providers.base import Model, estimate_tokens

STRUCTURED_FORMS = ("json_schema", "json_object_schema", "json_object")


def check_network(model_id: str, base_url: str | None) -> None:
    """Remote calls need allow_network; loopback servers (tests' own) are always allowed."""
    if not get_settings().allow_network and not is_loopback_url(base_url):
        raise NetworkBlocked(model_id)


def response_format(form: str, schema: dict) -> dict[str, Any]:
    """The structured-output request body for a declared form (see STRUCTURED_FORMS)."""
    if form == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": False}}
    if form == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_object"}


def retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("retry-after") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class OpenAICompatModel(Model):
    """Subclasses set `provider`, `sdk` (the imported SDK module) and implement `client()`."""

    sdk: Any = None

    def client(self) -> Any:
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    def _request(self, messages: list[dict], options: dict, stream: bool) -> dict[str, Any]:
        self.client()  # a missing key is the first thing to tell the user
        check_network(self.model_id, self.base_url)
        body: dict[str, Any] = {"model": self.name, "messages": messages}
        for key in ("temperature", "max_tokens", "seed", "stop"):
            if key in options:
                body[key] = options[key]
        if options.get("schema") is not None:
            body["response_format"] = response_format(self.structured_output, options["schema"])
        if stream:
            body["stream"] = True
        if "timeout" in options:
            body["timeout"] = options["timeout"]
        return body

    def _call(self, body: dict[str, Any]) -> Any:
        sdk = self.sdk
        try:
            return self.client().chat.completions.create(**body)
        except sdk.APITimeoutError as exc:
            raise ProviderUnreachable(self.provider, self.base_url, body.get("timeout") or get_settings().request_timeout_s, "timed out") from exc
        except sdk.APIConnectionError as exc:
            raise ProviderUnreachable(self.provider, self.base_url, get_settings().request_timeout_s, str(exc)) from exc
        except sdk.APIStatusError as exc:
            raise ProviderError(
                f"{self.model_id} answered HTTP {exc.status_code}: {exc.message}",
                status=exc.status_code,
                retry_after=retry_after(getattr(exc.response, "headers", None)),
            ) from exc

    def _complete(self, messages: list[dict], options: dict) -> Completion:
        resp = self._call(self._request(messages, options, stream=False))
        try:
            choice = resp.choices[0]
            text = choice.message.content or ""
        except (AttributeError, IndexError, TypeError) as exc:
            raise ProviderError(f"{self.model_id} returned a malformed response (no choices).") from exc
        if resp.usage is not None:
            usage = Usage(resp.usage.prompt_tokens or 0, resp.usage.completion_tokens or 0)
        else:
            usage = Usage(sum(estimate_tokens(m["content"]) for m in messages), estimate_tokens(text), estimated=True)
        return Completion(text=text, model=self.model_id, usage=usage, finish_reason=choice.finish_reason)

    def _stream(self, messages: list[dict], options: dict) -> tuple[Iterator[str], Any]:
        body = self._request(messages, options, stream=True)
        state: dict[str, Any] = {"usage": None, "finish": None}

        def deltas() -> Iterator[str]:
            for chunk in self._call(body):
                if getattr(chunk, "usage", None):
                    state["usage"] = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                if chunk.choices:
                    state["finish"] = chunk.choices[0].finish_reason or state["finish"]
                    yield chunk.choices[0].delta.content or ""

        def finish(text: str) -> Completion:
            usage = state["usage"] or Usage(
                sum(estimate_tokens(m["content"]) for m in messages), estimate_tokens(text), estimated=True
            )
            return Completion(text=text, model=self.model_id, usage=usage, finish_reason=state["finish"])

        return deltas(), finish
