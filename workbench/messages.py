"""Plain data that crosses every boundary: messages in, a completion (with usage and cost) out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Iterable, Iterator, Literal

Role = Literal["system", "user", "assistant", "tool"]
ROLES = ("system", "user", "assistant", "tool")


@dataclass
class Message:
    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    estimated: bool = False  # True when no tokenizer could count them (a chars/4 estimate)
    cache_read_tokens: int = 0  # of input_tokens, how many came from a prompt cache instead of being evaluated

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass
class Completion:
    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    duration_ms: float = 0.0
    cpu_seconds: float | None = None  # measured compute, set by in-process providers
    cost_usd: float | None = None  # set by the cost wrapper
    cost_source: str | None = None  # "price-table", "cpu-seconds", "unpriced"
    cached: bool = False
    data: Any = None  # parsed JSON when a schema was requested

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["usage"]["total_tokens"] = self.usage.total_tokens
        return out


class Stream:
    """An iterator of text deltas; `.completion` is set once the iterator is exhausted.

    Breaking out of the loop (or Ctrl-C) stops the generation; `close()` releases the model.
    """

    def __init__(self, deltas: Iterator[str], finish: Any):
        self._deltas = deltas
        self._finish = finish  # callable(text) -> Completion
        self._parts: list[str] = []
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            for delta in self._deltas:
                if delta:
                    self._parts.append(delta)
                    yield delta
        finally:
            # Stopped early (a break): the provider's generator must stop first, so that its final count
            # (usage, CPU time) exists when the completion is made, instead of an estimate.
            self._close_deltas()
            self.completion = self._finish("".join(self._parts))

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def _close_deltas(self) -> None:
        close = getattr(self._deltas, "close", None)
        if close:
            close()

    def close(self) -> None:
        self._close_deltas()
        if self.completion is None:
            self.completion = self._finish("".join(self._parts))


MessagesLike = str | Iterable[Message | dict[str, Any]]


def normalize_messages(messages: MessagesLike, system: str | None = None) -> list[dict[str, str]]:
    """Accept a prompt string, Message objects or {"role", "content"} dicts; validate roles."""
    from workbench.errors import SchemaError

    if isinstance(messages, str):
        items: list[dict[str, str]] = [{"role": "user", "content": messages}]
    else:
        items = []
        for m in messages:
            d = m.as_dict() if isinstance(m, Message) else dict(m)
            if d.get("role") not in ROLES:
                raise SchemaError(f"Message role {d.get('role')!r} is not one of {', '.join(ROLES)}.")
            if not isinstance(d.get("content"), str):
                raise SchemaError("Every message needs a string 'content'.")
            items.append({"role": d["role"], "content": d["content"]})
    if system:
        items.insert(0, {"role": "system", "content": system})
    if not items or not any(m["content"].strip() for m in items if m["role"] == "user"):
        raise SchemaError("The prompt is empty: give at least one user message with some text.")
    return items
