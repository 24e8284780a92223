"""What a failed call means for the gateway: retry it, fail over, count it against the breaker, or hand it
straight back to the caller (their own error: retrying or failing over would only repeat it).

One table, used by retry.py, breaker.py and fallback.py, so they never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from workbench.errors import (
    BreakerOpen,
    NetworkBlocked,
    ProviderError,
    ProviderUnreachable,
    StreamInterrupted,
    WorkbenchError,
)
from workbench.messages import Completion, Usage
from workbench.providers.base import estimate_tokens


@dataclass(frozen=True)
class Fault:
    kind: str
    retry: bool  # the same deployment may succeed if asked again
    failover: bool  # another deployment may succeed
    counts: bool  # says something about the deployment's health (breaker, success rate)


CALLER = Fault("caller", retry=False, failover=False, counts=False)
UNEXPECTED = Fault("unexpected", retry=False, failover=False, counts=False)  # a bug: surface it untouched
RATE_LIMIT = Fault("rate_limit", True, True, True)
PAYMENT = Fault("payment", False, True, True)  # 402: out of credit, asking again will not help
SERVER = Fault("server", True, True, True)
TIMEOUT = Fault("timeout", True, True, True)
CONNECTION = Fault("connection", True, True, True)
MALFORMED = Fault("malformed", True, True, True)
BREAKER = Fault("breaker_open", False, True, False)
BLOCKED = Fault("network_blocked", False, True, False)
INTERRUPTED = Fault("interrupted", False, False, False)  # output was delivered: never resend
# The model's own process died (errors.ModelCrashed): a native crash tends to repeat on every call, so the
# same model is not asked again (each retry would reload the weights and crash again); another may answer.
CRASH = Fault("crash", retry=False, failover=True, counts=True)

BY_KIND = {f.kind: f for f in (RATE_LIMIT, PAYMENT, SERVER, TIMEOUT, CONNECTION, MALFORMED, CRASH)}
# Exceptions of these libraries that escape a provider mid-response are transport faults.
TRANSPORT_MODULES = {"httpx", "httpcore", "h11", "h2", "openai", "groq", "mistralai", "ollama", "anyio"}


def classify(exc: BaseException) -> Fault:
    if isinstance(exc, StreamInterrupted):
        return INTERRUPTED
    if isinstance(exc, BreakerOpen):
        return BREAKER
    if isinstance(exc, NetworkBlocked):
        return BLOCKED
    if isinstance(exc, ProviderUnreachable):
        return TIMEOUT if _timed_out(exc) else CONNECTION
    if isinstance(exc, ProviderError):
        return _by_status(exc)
    if isinstance(exc, WorkbenchError):  # NeedsKey, Schema, Budget, UnknownModel, ContextTooLong, Config, ...
        return CALLER
    if isinstance(exc, json.JSONDecodeError):
        return MALFORMED
    if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__:
        return TIMEOUT
    if isinstance(exc, ConnectionError) or type(exc).__module__.split(".")[0] in TRANSPORT_MODULES:
        return CONNECTION
    return UNEXPECTED


def _by_status(exc: ProviderError) -> Fault:
    forced = getattr(exc, "fault_kind", None)
    if forced in BY_KIND:
        return BY_KIND[forced]
    status = exc.status
    if status is None:
        return MALFORMED  # answered, but not in a shape we can use (no choices, bad JSON)
    if status == 429:
        return RATE_LIMIT
    if status == 402:
        return PAYMENT
    if status == 408:
        return TIMEOUT
    if status >= 500:
        return SERVER
    return CALLER  # 400, 401, 403, 404, 413, 422: the request itself is wrong


def _timed_out(exc: ProviderUnreachable) -> bool:
    cause = exc.__cause__
    return cause is not None and (isinstance(cause, TimeoutError) or "Timeout" in type(cause).__name__)


def normalize(exc: Exception, model_id: str) -> Exception:
    """Raw transport exceptions (e.g. httpx.RemoteProtocolError from a stream cut mid-body) become a
    WorkbenchError that names the model, so callers and records see one vocabulary."""
    if isinstance(exc, WorkbenchError):
        return exc
    fault = classify(exc)
    if fault is UNEXPECTED:
        return exc
    err = ProviderError(
        f"{model_id}: the response broke off or could not be read ({type(exc).__name__}: {exc}). "
        f"The gateway retries and fails over on this; if it persists, check the server.",
        status=None,
    )
    err.fault_kind = fault.kind  # type: ignore[attr-defined]
    err.__cause__ = exc
    return err


def describe(exc: BaseException) -> str:
    """Short text for records: class and first line of the message."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:300]}"


def partial(model_id: str, text: str) -> Completion:
    """The completion of a stream that ended in an error: what was delivered, marked finish_reason="error"."""
    return Completion(text=text, model=model_id, usage=Usage(0, estimate_tokens(text), estimated=True),
                      finish_reason="error")


def interrupted(exc: Exception, model_id: str, delivered: str) -> Exception:
    """A failure after text was delivered: never retried or failed over (the user would see it twice)."""
    if isinstance(exc, StreamInterrupted):
        return exc
    err = StreamInterrupted(model_id, delivered, exc)
    err.__cause__ = exc
    return err
