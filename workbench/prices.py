"""Read the price table (the packaged prices.yaml, with WORKBENCH_PRICES_FILE's entries over it) and price
a completion."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import yaml

from workbench.config import get_settings
from workbench.errors import ConfigError
from workbench.messages import Completion

PRICE_FILE = Path(__file__).with_name("prices.yaml")
EXAMPLE = "openai: {gpt-4o-mini: {input: 0.15, output: 0.60}}"


def price_table() -> dict[str, dict[str, dict[str, float]]]:
    """provider -> model -> {input, output[, context]} (USD per million tokens)."""
    return _table(get_settings().prices_file)


@functools.lru_cache(maxsize=4)
def _table(extra: Path | None) -> dict[str, dict[str, dict[str, float]]]:
    table = _read(PRICE_FILE, yaml.safe_load(PRICE_FILE.read_text()))
    if extra is not None:
        try:
            data = yaml.safe_load(Path(extra).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"Cannot read WORKBENCH_PRICES_FILE {extra}: {exc}. Point it at a YAML file "
                              f"like `{EXAMPLE}` (USD per million tokens), or unset it.") from None
        for provider, models in _read(extra, data).items():
            table[provider] = {**table.get(provider, {}), **models}
    return table


def _read(path: Path, data: Any) -> dict[str, dict[str, dict[str, float]]]:
    """The file's table, every price a finite number >= 0 (ConfigError naming the entry otherwise)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must map providers to models, like `{EXAMPLE}`.")
    table: dict[str, dict[str, dict[str, float]]] = {}
    for provider, models in data.items():
        table[str(provider)] = {}
        for name, entry in (models or {}).items():
            where = f"{path}: {provider}: {name}"
            if not isinstance(entry, dict) or not {"input", "output"} <= set(entry):
                raise ConfigError(f"{where} needs input and output prices (USD per million tokens), like `{EXAMPLE}`.")
            for key, value in entry.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                        or value < 0:
                    raise ConfigError(f"{where}: {key} must be a finite number >= 0, not {value!r}.")
            table[str(provider)][str(name)] = {k: float(v) for k, v in entry.items()}
    return table


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
