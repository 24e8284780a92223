"""The OpenAI chat-completions request, validated by pydantic, and its translation to our messages and
options. Fields we accept but do not use (top_p, user, ...) are ignored; features we cannot serve
(n > 1, tools, non-text content) are refused with a 400 that says so, never silently dropped.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator

from workbench.json_schemas import InvalidSchema, check_schema
from workbench.visible import has_visible


class Part(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, ... are accepted and ignored
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[Part] | None = None


class JsonSchema(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    name: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")


class ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchema | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")  # llama.cpp-server style json_object + schema


class StreamOptions(BaseModel):
    include_usage: StrictBool = False


MAX_OUTPUT_TOKENS = 10_000_000  # far above any model's output; keeps the number an integer every server takes
INT64 = 2**63


class ChatRequest(BaseModel):
    """Numbers must be finite and in range (Infinity, NaN, 1e400 are refused); booleans must be JSON booleans."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)  # top_p, user, ... : accepted, not used
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=MAX_OUTPUT_TOKENS)
    max_completion_tokens: int | None = Field(None, ge=1, le=MAX_OUTPUT_TOKENS)
    seed: int | None = Field(None, ge=-INT64, lt=INT64)
    stop: str | list[str] | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    n: int = Field(1, ge=1)
    tools: list[Any] | None = None

    @field_validator("model")
    @classmethod
    def _named(cls, value: str) -> str:
        if not has_visible(value):
            raise ValueError("the model is blank: name one (GET /v1/models lists them)")
        return value.strip()


class Refused(Exception):
    """A request we understand but do not serve (answered 400 with the reason)."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        self.status, self.message, self.param, self.code = status, message, param, code


def _text(m: ChatMessage) -> str:
    if m.content is None or isinstance(m.content, str):
        return m.content or ""
    if any(p.type != "text" for p in m.content):
        raise Refused(400, "Only text content parts are supported.", "messages", "unsupported_content")
    return "".join(p.text or "" for p in m.content)


ROLE = {"developer": "system", "function": "tool"}


def translate(req: ChatRequest) -> tuple[list[dict], dict[str, Any]]:
    """OpenAI request → our messages and options (unsupported features refused, not ignored)."""
    if req.n != 1:
        raise Refused(400, "Only n=1 is supported.", "n")
    if req.tools:
        raise Refused(400, "Tool calling is not supported by this endpoint.", "tools")
    messages = [{"role": ROLE.get(m.role, m.role), "content": _text(m)} for m in req.messages]
    options: dict[str, Any] = {"temperature": req.temperature, "max_tokens": req.max_completion_tokens or req.max_tokens,
                               "seed": req.seed, "stop": req.stop}
    fmt = req.response_format
    if fmt is not None and fmt.type == "json_schema":
        schema = fmt.json_schema.schema_ if fmt.json_schema else None
        if not schema:
            raise Refused(400, "response_format json_schema needs json_schema.schema.", "response_format")
        options["schema"] = schema
    elif fmt is not None and fmt.type == "json_object":
        options["schema"] = fmt.schema_ or {"type": "object"}
    if "schema" in options:
        try:
            check_schema(options["schema"])
        except InvalidSchema as exc:
            raise Refused(400, str(exc), "response_format", "invalid_json_schema") from None
    return messages, {k: v for k, v in options.items() if v is not None}
