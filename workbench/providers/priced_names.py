"""Which model names a task may be submitted with: a cloud provider whose models are known (listed in the
price table) runs only those, so a typo such as `openai:gpt-4o-mnii` is refused when the task is submitted,
not when its first call fails, and no task runs a model whose cost its budget cannot count.

A provider pointed at another server (WORKBENCH_OPENAI_BASE_URL, ...) serves that server's own names, so its
names are not checked; nor are those of providers without a price list (ollama, local, plugins).
"""

from __future__ import annotations

from workbench.config import get_settings
from workbench.errors import UnknownModelError
from workbench.prices import listed_models


class UnpricedModel(UnknownModelError):
    def __init__(self, name: str, known: list[str]):
        provider, _, model = name.partition(":")
        self.name, self.available = name, known
        Exception.__init__(
            self,
            f"Unknown model {name!r}: {provider}'s known models are {', '.join(known)}. Use one of them "
            f"(`workbench models` lists every model), or price it in a YAML file named by WORKBENCH_PRICES_FILE, "
            f"e.g. `{provider}: {{{model}: {{input: 1.0, output: 4.0}}}}` (USD per million tokens).")


def check_priced(full_name: str) -> None:
    """UnpricedModel when `full_name` ("provider:model") belongs to a priced cloud provider that does not list it."""
    provider, _, model = full_name.partition(":")
    known = listed_models(provider)
    if not known or model in known or getattr(get_settings(), f"{provider}_base_url", None):
        return
    raise UnpricedModel(full_name, [f"{provider}:{name}" for name in known])
