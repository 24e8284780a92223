"""A small tree of errors. Every message says what was wrong and how to fix it.

Exceptions never log themselves; the CLI and the API turn them into one clear line (or a JSON body).
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Base of every error workbench raises on purpose. `str(err)` is the user-facing message."""

    http_status = 500
    exit_code = 1


class ConfigError(WorkbenchError):
    http_status = 422


class UnknownModelError(WorkbenchError):
    http_status = 422

    def __init__(self, name: str, available: list[str]):
        self.name, self.available = name, available
        listing = ", ".join(available) or "(none)"
        super().__init__(f"Unknown model {name!r}. Available models: {listing}. Run `workbench models` for details.")


class NeedsKeyError(WorkbenchError):
    http_status = 401

    def __init__(self, provider: str, variable: str):
        self.provider, self.variable = provider, variable
        super().__init__(
            f"The {provider} provider needs an API key: set {variable} in the environment or in .env. "
            f"To work without a key use the embedded model, e.g. --model local:qwen2.5-coder-1.5b."
        )


class ProviderUnreachable(WorkbenchError):
    http_status = 502

    def __init__(self, provider: str, url: str, timeout_s: float, detail: str = ""):
        self.provider, self.url = provider, url
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"Cannot reach the {provider} server at {url} within {timeout_s:g} s{extra}. "
            f"Check that it is running and the URL is right, or use --model local:qwen2.5-coder-1.5b."
        )


class ProviderError(WorkbenchError):
    """The provider answered, but with an error (status kept for retry/failover decisions)."""

    http_status = 502

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        self.status, self.retry_after = status, retry_after
        super().__init__(message)


class NetworkBlocked(WorkbenchError):
    http_status = 403

    def __init__(self, model: str):
        super().__init__(
            f"Model requests to {model} are blocked: network calls are off "
            f"(tests, or WORKBENCH_ALLOW_NETWORK=0). Use workbench.testing.FakeModel or a local: model."
        )


class WeightsError(WorkbenchError):
    """Model weights are missing, partial or changed since they were verified."""


class ContextTooLong(WorkbenchError):
    http_status = 413

    def __init__(self, tokens: int, limit: int, model: str):
        self.tokens, self.limit = tokens, limit
        super().__init__(
            f"The prompt is {tokens} tokens but {model} has a context window of {limit} tokens "
            f"(including the reply). Shorten the prompt or raise WORKBENCH_N_CTX."
        )


class SchemaError(WorkbenchError):
    http_status = 422


class StoreError(WorkbenchError):
    http_status = 503


class SandboxError(WorkbenchError):
    pass


class ToolError(WorkbenchError):
    pass


class BudgetExceeded(WorkbenchError):
    http_status = 402


class Cancelled(WorkbenchError):
    http_status = 409
