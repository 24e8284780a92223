"""`openai:` — the official openai SDK; WORKBENCH_OPENAI_BASE_URL points it at any compatible endpoint."""

from __future__ import annotations

import functools

import openai as sdk

from workbench.config import get_settings
from workbench.errors import NeedsKeyError
from workbench.providers import ProviderEntry, register
from workbench.providers._openai_compat import OpenAICompatModel
from workbench.providers.base import listed_cloud_models

DEFAULT_URL = "https://api.openai.com/v1"


@functools.lru_cache(maxsize=8)
def _client(key: str, base_url: str, timeout: float) -> sdk.OpenAI:
    return sdk.OpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)


class OpenAIModel(OpenAICompatModel):
    provider = "openai"
    sdk = sdk

    def __init__(self, name: str):
        super().__init__(name)
        self.structured_output = get_settings().openai_structured_output

    @property
    def base_url(self) -> str:
        return get_settings().openai_base_url or DEFAULT_URL

    def client(self) -> sdk.OpenAI:
        settings = get_settings()
        if settings.openai_api_key is None:
            raise NeedsKeyError("OpenAI", "OPENAI_API_KEY")
        # The SDK's own retries are off: retry and failover belong to the gateway.
        return _client(settings.openai_api_key.get_secret_value(), self.base_url, settings.request_timeout_s)


def _list():
    return listed_cloud_models("openai", get_settings().openai_api_key is not None, "OPENAI_API_KEY")


register(ProviderEntry("openai", OpenAIModel, _list))
