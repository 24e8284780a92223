"""OpenAI-compatible endpoint: any OpenAI client can use every workbench model through the gateway.

    client = openai.OpenAI(base_url="http://127.0.0.1:5006/v1", api_key="anything-or-WORKBENCH_API_KEY")
    client.chat.completions.create(model="local:qwen2.5-coder-1.5b", messages=[...], stream=True)

`/v1/chat/completions` (JSON, or SSE with stream=true, in OpenAI's wire format, usage included; with
stream_options.include_usage a last chunk carries it), `/v1/models`, `/v1/models/{id}`, and
`/api/v1/gateway/health` (breakers, cache, budgets; `/gateway/health` is its deprecated old path, see
deprecation.py). Models are resolved through the registry and built by the gateway (`workbench.get_model`). Errors are OpenAI-shaped: {"error": {message, type, param, code}}.
Optional headers: X-Workbench-Agent (budgets, records), X-Workbench-Task (records, the task's budget: only a
task submitted with the caller's own key, or any task with the admin scope), X-Workbench-Cache: off.
Budgets and rate limits per key use the name of the key the server's auth identified (never the Bearer string).
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.routing import Route

from workbench import telemetry
from workbench.errors import ProviderError, UnknownModelError, WorkbenchError
from workbench.gateway import attempts, faults
from workbench.ids import task_id_or_none
from workbench.server import deprecation
from workbench.server.auth import caller_of
from workbench.server.openai_schema import ChatRequest, Refused, translate

router = APIRouter()
_MODELS: dict[str, Any] = {}  # requested name -> composed gateway model, built once per Settings object
_BUILT_WITH: list[Any] = [None]


def error(status: int, message: str, param: str | None = None, code: str | None = None,
          headers: dict | None = None) -> JSONResponse:
    kind = {401: "authentication_error", 402: "insufficient_quota", 403: "permission_error",
            429: "rate_limit_error"}.get(status, "invalid_request_error" if status < 500 else "api_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": code}},
                        status_code=status, headers=headers)


def _from_exception(exc: Exception) -> JSONResponse:
    if isinstance(exc, Refused):
        return error(exc.status, exc.message, exc.param, exc.code)
    if isinstance(exc, UnknownModelError):
        return error(404, f"The model {exc.name!r} does not exist. Available models: {', '.join(exc.available)}.",
                     "model", "model_not_found")
    if isinstance(exc, WorkbenchError):
        wait = getattr(exc, "retry_after", None)
        headers = {"retry-after": str(math.ceil(max(wait, 0)))} if wait is not None else None  # whole seconds
        return error(_status(exc), str(exc), None, _snake(type(exc).__name__), headers)
    raise exc


def _status(exc: WorkbenchError) -> int:
    """The caller's own errors are a 4xx, whatever layer found them: a provider that answered 400 (bad
    arguments, a schema it cannot use, a reply cut off at max_tokens) says so about the request, not itself."""
    if faults.classify(exc) is faults.CALLER and isinstance(exc, ProviderError):
        return exc.status if exc.status is not None and 400 <= exc.status < 500 else 400
    return exc.http_status


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def get_gateway_model(name: str) -> Any:
    import workbench
    from workbench.config import get_settings

    settings = get_settings()
    if _BUILT_WITH[0] is not settings or len(_MODELS) > 256:  # settings reloaded: rebuild with the new ones
        _MODELS.clear()
        _BUILT_WITH[0] = settings
    model = _MODELS.get(name)
    if model is None:
        model = _MODELS[name] = workbench.get_model(name)
    return model


def _who(request: Request) -> dict[str, Any]:
    """The caller scope: the key as the auth guard identified it (its stored name), never the Bearer string, so
    a rotated key keeps its budget and an unknown string never gets a fresh one. On a server without keys every
    caller is `anonymous`, which the policy's key budgets (`default`) cover too."""
    h = request.headers
    return {"key_name": caller_of(request).name, "agent": h.get("x-workbench-agent"),
            "task_id": h.get("x-workbench-task")}


def _task_refusal(request: Request, task_id: str) -> JSONResponse | None:
    """Calls count against (and are recorded under) the task named by X-Workbench-Task: a key may name only
    the tasks it submitted; the admin scope (and every caller of a server without keys) may name any."""
    from workbench.server.auth import record_denial
    from workbench.store import api_keys, get_store

    canonical = task_id_or_none(task_id)
    if canonical is None:
        return error(400, f"X-Workbench-Task must be a task id (a UUID, as `workbench tasks list` shows), not "
                          f"{task_id[:60]!r}.", None, "invalid_task_header")
    caller = caller_of(request)
    if caller.may("admin"):
        return None
    owner = api_keys.owner(get_store(), canonical)
    if owner == caller.name:
        return None
    record_denial(request.scope, 403, f"key {caller.name!r} named task {task_id} in X-Workbench-Task; it is "
                                      f"{owner or 'nobody'}'s", caller, "admin")
    return error(403, f"Task {task_id} was not submitted with your key: name only your own tasks in "
                      f"X-Workbench-Task (another key's task needs the admin scope).", None, "task_not_yours")


def _complete(req: ChatRequest, who: dict, options: dict, messages: list[dict]) -> Any:
    with attempts.caller(**who):
        return get_gateway_model(req.model).complete(messages, **options)


def _open_stream(req: ChatRequest, who: dict, options: dict, messages: list[dict]) -> tuple[Any, Any, str | None]:
    """Open the stream and read its first delta here, so errors before any output get a real status."""
    with attempts.caller(**who):
        model = get_gateway_model(req.model)
        stream = model.stream(messages, **options)
    it = iter(stream)
    try:
        first = next(it, None)
    except BaseException:
        stream.close()
        raise
    return stream, it, first


def _usage(c: Any) -> dict[str, int]:
    u = c.usage
    return {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.total_tokens}


async def chat_completions(request: Request) -> Response:
    try:
        req = ChatRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        return error(422, f"Invalid request body: {param}: {first['msg']} ({exc.error_count()} problem(s)).", param,
                     "invalid_body")
    try:
        messages, options = translate(req)
        if request.headers.get("x-workbench-cache", "").lower() in ("off", "0", "false", "no"):
            options["cache"] = False
        who = _who(request)
        if who["task_id"] is not None and (refusal := await anyio.to_thread.run_sync(_task_refusal, request,
                                                                                    who["task_id"])):
            return refusal
        if req.stream:
            stream, it, first = await anyio.to_thread.run_sync(_open_stream, req, who, options, messages)
        else:
            completion = await anyio.to_thread.run_sync(_complete, req, who, options, messages)
    except (WorkbenchError, Refused) as exc:
        return _from_exception(exc)
    if req.stream:
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(_sse(req, stream, it, first, include_usage), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache", "x-accel-buffering": "no"})
    body = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": completion.model, "system_fingerprint": None,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": completion.text, "refusal": None},
                         "logprobs": None, "finish_reason": completion.finish_reason or "stop"}],
            "usage": _usage(completion)}
    headers = {"x-workbench-model": completion.model, "x-workbench-cached": str(completion.cached).lower(),
               "x-workbench-cost-usd": f"{completion.cost_usd or 0.0:.9f}",
               "x-workbench-cost-source": completion.cost_source or "unpriced"}
    return Response(json.dumps(body, separators=(",", ":")), media_type="application/json", headers=headers)


async def _sse(req: ChatRequest, stream: Any, it: Any, first: str | None, include_usage: bool):
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": get_gateway_model(req.model).model_id, "system_fingerprint": None}
    extra = {"usage": None} if include_usage else {}

    def chunk(delta: dict, finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return f"data: {json.dumps({**base, 'choices': [choice], **extra}, separators=(',', ':'))}\n\n"

    try:
        yield chunk({"role": "assistant", "content": first or ""})
        while first is not None:
            delta = await anyio.to_thread.run_sync(next, it, None)
            if delta is None:
                break
            yield chunk({"content": delta})
    except Exception as exc:  # the status line is sent: report in-band, as OpenAI does, and stop
        message = str(exc) if isinstance(exc, WorkbenchError) else f"{type(exc).__name__}: {exc}"
        code = _snake(type(exc).__name__)
        yield f"data: {json.dumps({'error': {'message': message, 'type': 'api_error', 'param': None, 'code': code}})}\n\n"
        return
    finally:
        stream.close()
    completion = stream.completion
    yield chunk({}, (completion.finish_reason if completion else None) or "stop")
    if include_usage and completion is not None:
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': _usage(completion)}, separators=(',', ':'))}\n\n"
    yield "data: [DONE]\n\n"


# A plain Starlette route: the body is parsed here with pydantic, so FastAPI's per-request dependency
# machinery (about 0.1 ms on this machine) is skipped on the hot path. Not listed in the OpenAPI schema.
router.routes.append(Route("/v1/chat/completions", chat_completions, methods=["POST"]))


def _model_list() -> list[dict[str, Any]]:
    from workbench import providers
    from workbench.gateway import routes

    return [{"id": i.name, "object": "model", "created": 0, "owned_by": i.provider}
            for i in [*providers.list_models(), *routes.listed()]]


@router.get("/v1/models")
async def list_models() -> JSONResponse:
    return JSONResponse({"object": "list", "data": await anyio.to_thread.run_sync(_model_list)})


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str) -> JSONResponse:
    from workbench import providers

    models = await anyio.to_thread.run_sync(_model_list)
    full = providers.resolve(model_id)
    found = next((m for m in models if m["id"] == full), None)
    if found is None:
        return _from_exception(UnknownModelError(model_id, [m["id"] for m in models]))
    return JSONResponse(found)


@router.get("/gateway/health", tags=["gateway"], deprecated=True,
            description=deprecation.entry("/gateway/health").describe())
@router.get("/api/v1/gateway/health", tags=["gateway"])  # registered first (decorators apply bottom-up)
async def gateway_health() -> JSONResponse:
    """Breakers with rolling health per deployment, cache hit rate and savings, budgets (this process's, and
    today's shared spend ledger), local-only state."""
    from workbench.gateway import availability, breaker, budget, cache, shared_spend

    offline, why = availability.local_only()
    shared = await anyio.to_thread.run_sync(shared_spend.report)
    return JSONResponse({"breakers": breaker.snapshot(), "cache": cache.stats(), "budgets": budget.report(),
                         "spend": shared,
                         "local_only": offline, "local_only_reason": why,
                         "attempts": dict(attempts.STATS), "events": dict(telemetry.STATS)})

