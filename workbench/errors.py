"""A small tree of errors. Every message says what was wrong and how to fix it.

Exceptions never log themselves; the CLI and the API turn them into one clear line (or a JSON body).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


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


class ModelCrashed(ProviderError):
    """The process hosting a model's native code died (a signal such as SIGSEGV, or a non-zero exit).

    The caller's process lives on; the next call starts a fresh model process. The gateway fails over
    but does not retry on the same model (faults.CRASH): a native crash usually repeats on every call."""

    fault_kind = "crash"

    def __init__(self, model: str, how: str, where: str, advice: str, during: str = ""):
        self.model, self.how = model, how
        super().__init__(
            f"{model} crashed ({how}) in {where}{during}; the model process was replaced and the next call "
            f"starts a fresh one. {advice}",
            status=502,
        )


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


class EventNotKept(StoreError):
    """An event could be neither queued for Postgres nor saved locally: telemetry.emit raises it to the
    emitter instead of dropping the event silently."""


class SandboxError(WorkbenchError):
    pass


class ToolError(WorkbenchError):
    pass


class BudgetExceeded(WorkbenchError):
    http_status = 402


class SpendLedgerUnavailable(StoreError):
    """The spend ledger (Postgres) cannot be read: cloud calls are refused (fail closed), local ones run."""


class UnpricedCloudModel(WorkbenchError):
    """A cloud model without a price: its cost could not be counted against any budget, so it is not called."""

    http_status = 400


class Cancelled(WorkbenchError):
    http_status = 409


class TaskFailed(WorkbenchError):
    """A task body ran to its end without a usable result; `result` keeps what it did (for the record)."""

    def __init__(self, message: str, result: dict | None = None):
        super().__init__(message)
        self.result = result


class AwaitingApproval(WorkbenchError):
    """Not a failure: the task's plan waits for a human (the task parks in `awaiting_approval`)."""

    http_status = 409


# --- gateway (retry, breaker, fallback, budget) -------------------------------------------------


class StreamInterrupted(WorkbenchError):
    """A stream broke after it had already delivered text. The gateway never restarts such a stream
    (the user would see output twice); the text delivered so far is kept in `.partial`."""

    http_status = 502

    def __init__(self, model: str, partial: str, cause: BaseException | str):
        self.model, self.partial = model, partial
        self.cause = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        super().__init__(
            f"The stream from {model} broke after {len(partial)} characters had been delivered ({self.cause}). "
            f"The partial answer is kept in .partial and nothing was resent. Call again to retry, or use "
            f"complete() instead of stream(): a complete() call fails over along the chain."
        )


class BreakerOpen(WorkbenchError):
    """The circuit breaker of one deployment is open: calls to it fail fast until the cooldown ends."""

    http_status = 503

    def __init__(self, model: str, failures: int, retry_after: float, last_error: str = ""):
        self.model, self.failures, self.retry_after = model, failures, retry_after
        last = f" Last error: {last_error}." if last_error else ""
        super().__init__(
            f"The circuit breaker for {model} is open after {failures} consecutive failures; calls fail fast "
            f"for another {retry_after:.1f} s, then one probe call is let through.{last} Use another model "
            f"(e.g. --model local:qwen2.5-coder-1.5b) or give it a failover chain in the gateway policy."
        )


class RateLimited(WorkbenchError):
    """A per-key or per-agent rate limit of the gateway refused the call (token bucket empty)."""

    http_status = 429

    def __init__(self, scope: str, name: str, per_minute: float, retry_after: float):
        self.scope, self.name, self.retry_after = scope, name, retry_after
        super().__init__(
            f"Rate limit for {scope} {name!r} reached ({per_minute:g} calls per minute); retry in "
            f"{retry_after:.1f} s, or raise rate_limits.{scope} in the gateway policy (WORKBENCH_GATEWAY_POLICY)."
        )


# --- agents (tools, guards, Director, specialists) ----------------------------------------------


class ToolRefused(ToolError):
    """A tool call was refused on purpose: a permission the agent lacks, or a path outside the workspace
    or naming a secret. The refusal is logged as a `tool_call` event with `refused: true`."""

    http_status = 403


class AgentTimeout(WorkbenchError):
    """An agent or a task ran past its wall-clock limit."""

    http_status = 504


class LoopDetected(WorkbenchError):
    """An agent proposed the same action several times in a row (OpenHands' stuck detector)."""

    http_status = 508


class PlanError(WorkbenchError):
    """The Director's plan is invalid (cycle, unknown specialist, duplicate id, missing dependency)
    or no plan can be made at all (no enabled specialist, empty task)."""

    http_status = 422


class UnknownSpecialist(WorkbenchError):
    http_status = 422

    def __init__(self, name: str, available: list[str]):
        self.name, self.available = name, available
        super().__init__(
            f"Unknown specialist {name!r}. Registered specialists: {', '.join(available) or '(none)'}. "
            f"Add it under `specialists:` in agents.yaml (WORKBENCH_AGENTS_FILE) with a `factory:` import path."
        )


class SpecialistDisabled(WorkbenchError):
    http_status = 409

    def __init__(self, name: str):
        self.name = name
        super().__init__(
            f"The specialist {name!r} is disabled. Enable it with registry.enable({name!r}) or set "
            f"`enabled: true` for it in agents.yaml (WORKBENCH_AGENTS_FILE)."
        )


class QueryRefused(WorkbenchError):
    """The Data specialist refused a SQL statement (only one read-only SELECT may run)."""

    http_status = 403


def field_errors(errors: Sequence[Mapping[str, Any]], limit: int = 10) -> str:
    """Pydantic's validation errors as one readable line, `where: what is wrong; …` (the first `limit`)."""
    parts = []
    for e in errors[:limit]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more
