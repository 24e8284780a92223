"""Read the one price table (prices.yaml) and price a completion."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

from workbench.config import get_settings
from workbench.messages import Completion

PRICE_FILE = Path(__file__).with_name("prices.yaml")


@functools.lru_cache(maxsize=1)
def price_table() -> dict[str, dict[str, dict[str, float]]]:
    data = yaml.safe_load(PRICE_FILE.read_text()) or {}
    return {provider: dict(models or {}) for provider, models in data.items()}


def cloud_price(model_id: str) -> dict[str, float] | None:
    provider, _, name = model_id.partition(":")
    return price_table().get(provider, {}).get(name)


def price(completion: Completion) -> tuple[float, str]:
    """(cost in USD, how it was priced). Never a silent zero: an unknown price says 'unpriced'."""
    if completion.cpu_seconds is not None:
        return completion.cpu_seconds * get_settings().local_cpu_second_usd, "cpu-seconds"
    entry = cloud_price(completion.model)
    if entry is None:
        return 0.0, "unpriced"
    usage = completion.usage
    cost = (usage.input_tokens * entry["input"] + usage.output_tokens * entry["output"]) / 1_000_000
    return cost, "price-table"


def describe(model_id: str) -> str:
    entry = cloud_price(model_id)
    if entry is None:
        return ""
    return f"${entry['input']:g}/${entry['output']:g} per Mtok"


def listed_models(provider: str) -> dict[str, dict[str, float]]:
    return price_table().get(provider, {})
