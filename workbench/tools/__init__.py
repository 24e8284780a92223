"""Tools: typed Python functions whose signature and docstring are their JSON schema.

A pydantic model built from the signature (descriptions from the docstring's `Args:`) gives the schema
the agents see and checks each call's arguments, refusing unknown ones.

    @tool(permissions=["reads_files"])
    def read_file(path: Path) -> str:
        '''Read a text file from the workspace.

        Args:
            path: File to read, relative to the workspace.
        '''
        return path.read_text()

    read_file.schema()                      # {"name", "description", "parameters"} (OpenAI / MCP shape)
    Toolset([read_file], permissions={"reads_files"}, workspace=dir).call("read_file", {"path": "a.txt"})

A parameter annotated `pathlib.Path` is a *workspace path*: the toolset resolves it inside the workspace
(or one of several roots) and refuses `..`, `~`, absolute paths outside, symlinks that escape, and
secret-looking files (keys, .env, ~/.ssh, ...) unless the agent holds `reads_secrets`. The file tools then
open what was checked without following any symlink (workbench.nofollow), so a link swapped in after the
check cannot redirect them, and never write to a file with other hard links. Refusals are logged as
`tool_call` events with `refused: true`, because a refused call is evidence (prompt injection) worth
studying, not noise.

Each tool also says whether it only reads (`read_only`) and whether it can destroy data (`destructive`):
derived from its permissions unless given, and shown to MCP clients as its annotations.
"""

from __future__ import annotations

import fnmatch
import inspect
import json
import os
import re
import stat
import time
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PydanticUserError, ValidationError, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from workbench import nofollow, redact, telemetry
from workbench.errors import ToolError, ToolRefused

PERMISSIONS = ("reads_files", "writes_files", "network", "reads_secrets", "runs_code")
# File names and folders that hold credentials; reading them needs `reads_secrets` even inside the workspace.
SECRET_PATTERNS = (".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "id_ecdsa*", ".netrc",
                   ".pgpass", "credentials*", "*secret*", ".git-credentials")
SECRET_DIRS = (".ssh", ".aws", ".gnupg", ".docker", ".kube")
# Permissions that change something outside the call: a tool holding one is not read-only.
CHANGES_THINGS = frozenset({"writes_files", "runs_code", "network"})
MAX_RESULT_CHARS = 4000  # an observation longer than this floods a small model's context
MAX_READ_BYTES = 1_000_000  # read_file returns at most this much of a file
MAX_SEARCH_FILE_BYTES = 1_000_000  # search_files skips larger files (logs, data dumps)
MAX_SEARCH_FILES = 5000  # files search_files opens in one call before it stops
MAX_SEARCH_RESULTS = 200


# --- schema from signature + docstring ------------------------------------------------------------


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {param: doc}) from a Google-style `Args:` section or Sphinx `:param x:` lines."""
    lines = inspect.cleandoc(doc or "").splitlines()
    description: list[str] = []
    params: dict[str, str] = {}
    current: str | None = None
    in_args = False
    for line in lines:
        stripped = line.strip()
        sphinx = re.match(r":param\s+(?:\w+\s+)?(\w+):\s*(.*)", stripped)
        if sphinx:
            current, params[sphinx[1]] = sphinx[1], sphinx[2]
            continue
        if re.fullmatch(r"(Args|Arguments|Parameters):", stripped):
            in_args, current = True, None
            continue
        if re.fullmatch(r"(Returns|Raises|Yields|Examples?|Notes?):", stripped):
            in_args, current = False, None
            continue
        entry = re.match(r"(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)", stripped) if in_args else None
        if entry and not line.startswith(" " * 8):
            current, params[entry[1]] = entry[1], entry[2]
        elif current and stripped:
            params[current] = f"{params[current]} {stripped}".strip()
        elif not in_args and not params:
            description.append(line)
    return "\n".join(description).strip(), params


# A workspace path travels as a string: confine() makes it a Path inside the workspace, or refuses it.
_WIRE_TYPES: dict[Any, Any] = {Path: str, Path | None: str | None}
_ARGUMENTS_CONFIG = ConfigDict(extra="forbid", protected_namespaces=())


class _ToolSchema(GenerateJsonSchema):
    """Pydantic's JSON schema as the prompt and the grammar want it: no titles, `X | None` shown as X
    (a model that sends null is still accepted; the schema only says what to send)."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])


@dataclass
class Tool:
    name: str
    description: str
    parameters: dict[str, Any]  # JSON schema of the arguments object
    fn: Callable[..., Any]
    arguments_model: type[BaseModel]  # checks and coerces a call's arguments; `parameters` is its JSON schema
    permissions: frozenset[str] = frozenset()
    path_params: tuple[str, ...] = ()
    read_only: bool = True  # changes nothing (MCP readOnlyHint)
    destructive: bool = False  # may overwrite or delete data (MCP destructiveHint)

    def schema(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def signature(self) -> str:
        """`read_file(path: string)` as the prompt shows it."""
        required = set(self.parameters.get("required", []))
        parts = [f"{n}: {_type_label(p)}{'' if n in required else '?'}"
                 for n, p in self.parameters["properties"].items()]
        return f"{self.name}({', '.join(parts)})"

    def validate(self, args: Any) -> dict[str, Any]:
        """Checked arguments, defaults filled in and lightly coerced ("3" -> 3 for an integer: small models
        quote numbers), or a ToolError in one line saying what to fix."""
        if not isinstance(args, dict):
            raise ToolError(f"Arguments of {self.name} must be a JSON object, got {type(args).__name__}. "
                            f"Call it as {self.signature()}.")
        try:
            return dict(self.arguments_model.model_validate(args))
        except ValidationError as exc:
            raise ToolError(f"Bad arguments for {self.name}: {self._problems(exc)}. "
                            f"Call it as {self.signature()}.") from None

    def _problems(self, exc: ValidationError) -> str:
        problems = []
        for error in exc.errors(include_url=False):
            where = ".".join(map(str, error["loc"]))
            if error["type"] == "extra_forbidden":
                accepted = ", ".join(self.parameters["properties"]) or "no arguments"
                problems.append(f"unknown argument {where!r} ({self.name} takes {accepted})")
            elif error["type"] == "missing":
                problems.append(f"missing required argument {where!r}")
            else:
                problems.append(f"{where}: {error['msg']} (got {repr(error['input'])[:80]})")
        return "; ".join(problems)

    def call(self, args: Any, *, workspace: Path | Sequence[Path] | None = None, allow_secrets: bool = False) -> Any:
        args = self.validate(args)
        for name in self.path_params:
            # Defaults are filled in, so a defaulted Path(".") is confined too: the workspace, not the cwd.
            if args[name] is not None:
                args[name] = confine(args[name], workspace, allow_secrets=allow_secrets)
        try:
            return self.fn(**args)
        except ToolError:
            raise
        except Exception as exc:
            raise ToolError(f"{self.name} failed: {type(exc).__name__}: {exc}") from exc

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)


def _type_label(prop: dict[str, Any]) -> str:
    if "enum" in prop:
        return f"enum {prop['enum']}"
    if "anyOf" in prop:
        return " | ".join(_type_label(p) for p in prop["anyOf"])
    return prop.get("type", "any")


def tool(fn: Callable[..., Any] | None = None, *, name: str | None = None,
         permissions: Iterable[str] = (), read_only: bool | None = None, destructive: bool | None = None) -> Any:
    """Turn a typed, documented function into a Tool. Use bare (`@tool`) or with options. `read_only` and
    `destructive` default from the permissions (see CHANGES_THINGS; writing files is destructive)."""

    def build(func: Callable[..., Any]) -> Tool:
        perms = frozenset(permissions)
        unknown = perms - set(PERMISSIONS)
        if unknown:
            raise ToolError(f"Unknown permission(s) {sorted(unknown)} on tool {func.__name__}; "
                            f"use some of: {', '.join(PERMISSIONS)}.")
        description, docs = parse_docstring(func.__doc__)
        if not description:
            raise ToolError(f"Tool {func.__name__} needs a docstring: its first line is what the model reads.")
        hints = typing.get_type_hints(func)
        fields: dict[str, Any] = {}
        for pname, param in inspect.signature(func).parameters.items():
            if pname not in hints:
                raise ToolError(f"Parameter {pname!r} of tool {func.__name__} needs a type hint.")
            if pname not in docs:
                raise ToolError(f"Document parameter {pname!r} of tool {func.__name__} in its docstring "
                                f"(an `Args:` section: `{pname}: what it is`).")
            default = ... if param.default is inspect.Parameter.empty else param.default
            fields[pname] = (_WIRE_TYPES.get(hints[pname], hints[pname]),
                             Field(str(default) if isinstance(default, Path) else default, description=docs[pname]))
        try:
            arguments_model = create_model(func.__name__, __config__=_ARGUMENTS_CONFIG, **fields)
            parameters = arguments_model.model_json_schema(schema_generator=_ToolSchema)
        except PydanticUserError as exc:
            raise ToolError(f"Tool {func.__name__}: a parameter type cannot be described as JSON "
                            f"({str(exc).splitlines()[0]}). "
                            f"Use str, int, float, bool, Path, Literal, list or dict.") from None
        parameters.pop("title", None)
        parameters.setdefault("required", [])
        paths = tuple(p for p in fields if hints[p] in _WIRE_TYPES)
        reads_only = not (perms & CHANGES_THINGS) if read_only is None else read_only
        destroys = "writes_files" in perms if destructive is None else destructive
        return Tool(name or func.__name__, description, parameters, func, arguments_model, perms, paths,
                    reads_only, destroys)

    return build(fn) if fn is not None else build



# --- workspace confinement ------------------------------------------------------------------------


def confine(raw: Any, workspace: Path | Sequence[Path] | None, *, allow_secrets: bool = False) -> Path:
    """The absolute, symlink-free path of `raw` inside the workspace, or ToolRefused saying why not.

    With several roots a relative path is taken in the first; an absolute one may lie in any of them."""
    roots = [Path(r).resolve() for r in ([workspace] if isinstance(workspace, (str, Path)) else workspace or [])]
    if not roots:
        raise ToolError("This tool takes a file path but the agent has no workspace; give the Agent a workspace.")
    text = str(raw).strip()
    where = f"the workspace {roots[0]}" if len(roots) == 1 else f"the workspace roots {', '.join(map(str, roots))}"
    outside = f"Refused: {text!r} is outside {where}. Tools only touch files inside it; " \
              f"copy what the task needs into the workspace."
    if not text or "\x00" in text or text.startswith("~") or ".." in Path(text).parts:
        raise ToolRefused(outside)
    absolute = Path(text).is_absolute()
    for root in roots if absolute else roots[:1]:
        resolved = (Path(text) if absolute else root / text).resolve()  # a link pointing out is caught below
        if not resolved.is_relative_to(root):
            continue
        if not allow_secrets and is_secret(resolved.relative_to(root)):
            raise ToolRefused(f"Refused: {text!r} looks like a secret (keys, tokens, .env). An agent needs the "
                              f"`reads_secrets` permission to open it; none of the default specialists has it.")
        return resolved
    raise ToolRefused(outside)


def is_secret(relative: Path) -> bool:
    """A credentials folder anywhere on the path, or a credentials-looking file name."""
    parts = relative.parts
    if not parts:
        return False
    return any(p in SECRET_DIRS for p in parts) or any(fnmatch.fnmatch(parts[-1].lower(), p) for p in SECRET_PATTERNS)


# --- a toolset: what one agent may use ------------------------------------------------------------


@dataclass
class ToolCall:
    """One tool call as logged: arguments in, result or error out."""

    name: str
    arguments: dict[str, Any]
    result: str | None = None
    error: str | None = None
    refused: bool = False
    duration_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Toolset:
    tools: list[Tool]
    permissions: frozenset[str] = frozenset()
    workspace: Path | Sequence[Path] | None = None
    agent: str = ""
    _by_name: dict[str, Tool] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.permissions = frozenset(self.permissions)
        self._by_name = {t.name: t for t in self.tools}

    def get(self, name: str) -> Tool | None:
        return self._by_name.get(name)

    def allowed(self) -> list[Tool]:
        """Tools whose permissions the agent holds: the only ones the prompt offers."""
        return [t for t in self.tools if t.permissions <= self.permissions]

    def call(self, name: str, arguments: Any) -> ToolCall:
        """Run one call; every outcome (result, bad arguments, refusal) is a ToolCall, never an exception."""
        record = ToolCall(name, arguments if isinstance(arguments, dict) else {"_raw": arguments})
        start = time.perf_counter()
        try:
            record.result = _as_text(self._run(name, arguments))
        except ToolRefused as exc:
            record.error, record.refused = str(exc), True
        except ToolError as exc:
            record.error = str(exc)
        record.duration_ms = (time.perf_counter() - start) * 1000
        _log(record, self.agent)
        return record

    def _run(self, name: str, arguments: Any) -> Any:
        tool_ = self._by_name.get(name)
        if tool_ is None:
            offered = ", ".join(t.name for t in self.allowed()) or "(none)"
            raise ToolError(f"There is no tool {name!r}. Tools you can use: {offered}.")
        missing = tool_.permissions - self.permissions
        if missing:
            raise ToolRefused(f"Refused: {name} needs the permission(s) {', '.join(sorted(missing))}, which "
                              f"agent {self.agent or '(unnamed)'} does not hold. Grant them in agents.yaml if intended.")
        return tool_.call(arguments, workspace=self.workspace, allow_secrets="reads_secrets" in self.permissions)


def _as_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > MAX_RESULT_CHARS:
        text = text[:MAX_RESULT_CHARS] + f"\n[... {len(text) - MAX_RESULT_CHARS} more characters cut]"
    return text


def _log(record: ToolCall, agent: str) -> None:
    telemetry.emit("tool_call", agent=agent or None, duration_ms=record.duration_ms, error=record.error,
                   payload={"tool": record.name, "arguments": redact.fields(record.arguments), "refused": record.refused,
                            "result": (record.result or "")[:1000]})


# --- built-in file tools (the workspace is the only place they can reach) -------------------------


@tool(permissions=["reads_files"])
def read_file(path: Path) -> str:
    """Read a UTF-8 text file from the workspace.

    Args:
        path: File to read, relative to the workspace.
    """
    text, cut = nofollow.read_text(path, MAX_READ_BYTES)
    return text + (f"\n[... cut: the file is longer than {MAX_READ_BYTES:,} bytes]" if cut else "")


@tool(permissions=["reads_files"])
def list_files(path: Path = Path(".")) -> list[str]:
    """List the files and folders in a workspace folder.

    Args:
        path: Folder to list, relative to the workspace ("." is the workspace itself).
    """
    return nofollow.list_dir(path)


@tool(permissions=["reads_files"])
def search_files(text: str, path: Path = Path("."), max_results: int = 50) -> dict[str, Any]:
    """Find lines containing a text (exact substring, case-sensitive) in the workspace's text files.

    Args:
        text: The substring to look for.
        path: Folder to search, relative to the workspace ("." is the workspace itself).
        max_results: Most matching lines to return (1 to 200).
    """
    if not text:
        raise ToolError("search_files needs a non-empty `text` to look for.")
    limit = max(1, min(max_results, MAX_SEARCH_RESULTS))
    matches: list[dict[str, Any]] = []
    opened = 0
    with nofollow.open_dir(path) as top:
        # fwalk never descends through a symlinked folder and holds each folder open while listing it.
        for folder, _dirs, names, dir_fd in os.fwalk(".", dir_fd=top, follow_symlinks=False):
            for name in sorted(names):
                relative = Path(folder, name)
                if is_secret(relative) or opened >= MAX_SEARCH_FILES:
                    continue
                opened += 1
                for number, line in _matching_lines(name, dir_fd, text):
                    matches.append({"file": relative.as_posix(), "line": number, "text": line[:200]})
                    if len(matches) > limit:
                        return {"matches": matches[:limit], "truncated": True, "files_searched": opened}
    return {"matches": matches, "truncated": opened >= MAX_SEARCH_FILES, "files_searched": opened}


def _matching_lines(name: str, dir_fd: int, text: str) -> Iterable[tuple[int, str]]:
    """(line number, line) of each line holding `text` in one regular, small, non-binary file; else nothing."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:  # a symlink, or gone since it was listed
        return []
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SEARCH_FILE_BYTES:
            return []
        data = os.read(fd, MAX_SEARCH_FILE_BYTES + 1)
    finally:
        os.close(fd)
    if b"\x00" in data:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return [(n, line.strip()) for n, line in enumerate(lines, 1) if text in line]


@tool(permissions=["writes_files"])
def write_file(path: Path, content: str) -> str:
    """Write a UTF-8 text file in the workspace (creating folders as needed).

    Args:
        path: File to write, relative to the workspace.
        content: The full text to write.
    """
    nofollow.write_text(path, content)
    return f"wrote {len(content)} characters to {path.name}"


BUILTIN_TOOLS: dict[str, Tool] = {t.name: t for t in (read_file, list_files, search_files, write_file)}
