"""`groq:` — the official groq SDK (its requests go to <base>/openai/v1/...)."""

from __future__ import annotations

import functools

import groq as sdk

from workbench.config import get_settings
from workbench.errors import NeedsKeyError
from workbench.providers import ProviderEntry, register
from workbench.providers._openai_compat import OpenAICompatModel
from workbench.providers.base import listed_cloud_models

DEFAULT_URL = "https://api.groq.com"


@functools.lru_cache(maxsize=8)
def _client(key: str, base_url: str, timeout: float) -> sdk.Groq:
    return sdk.Groq(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)


class GroqModel(OpenAICompatModel):
    provider = "groq"
    sdk = sdk

    def __init__(self, name: str):
        super().__init__(name)
        self.structured_output = get_settings().groq_structured_output

    @property
    def base_url(self) -> str:
        return get_settings().groq_base_url or DEFAULT_URL

    def client(self) -> sdk.Groq:
        settings = get_settings()
        if settings.groq_api_key is None:
            raise NeedsKeyError("Groq", "GROQ_API_KEY")
        return _client(settings.groq_api_key.get_secret_value(), self.base_url, settings.request_timeout_s)


def _list():
    return listed_cloud_models("groq", get_settings().groq_api_key is not None, "GROQ_API_KEY")


register(ProviderEntry("groq", GroqModel, _list))
