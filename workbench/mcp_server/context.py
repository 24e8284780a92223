"""Context providers: what an MCP client may read beside the tools, as MCP resources and prompts.

    workbench://repo/files          the repository's files (git ls-files of the profile's first root)
    workbench://repo/file/{path}    one file of it (the read_file tool's confinement: roots, symlinks, secrets)
    workbench://repo/log            its last commits (git log)
    workbench://docs/{name}         the workbench's README and docs/ pages
    workbench://env                 versions, models, health (the light checks)
    workbench://preferences         the user's preferences file, WORKBENCH_HOME/preferences.md

Prompts: `review_file` (a file of the repository to review), `recent_changes` (its last commits to
summarise) and `with_preferences` (a question answered under the user's preferences).

The client's profile decides: a provider it does not list under `context` is refused, and the repository
also needs the file tools (`list_files` for the list and the log, `read_file` for a file) and roots.
Each read, allowed or refused, is one `tool_call` event (via mcp, `resource` or `prompt` in the payload).
"""

from __future__ import annotations

import json
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import mcp_types as types

from workbench import nofollow, telemetry
from workbench.errors import ToolError, ToolRefused, WorkbenchError
from workbench.mcp_server.profiles import Profile
from workbench.tools import confine

SCHEME = "workbench://"
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # a source checkout: README.md and docs/ beside the package
PREFERENCES_FILE = "preferences.md"
MAX_RESOURCE_BYTES = 1_000_000
MAX_LOG_COMMITS = 50
MAX_FILES = 5000
GIT_TIMEOUT_S = 10
VERSIONED = ("workbench", "mcp", "playwright", "duckdb", "dask", "panel", "pydantic", "llama_cpp_python")


class ContextRefused(WorkbenchError):
    """The profile does not allow this resource or prompt."""


def _light_health() -> list[dict[str, Any]]:
    from workbench.doctor import run_all

    return [{"name": r.name, "status": r.status, "detail": r.detail} for r in run_all(include_heavy=False)]


def _models() -> list[dict[str, Any]]:
    from workbench import providers

    return [{"name": i.name, "source": i.source, "usable": i.usable, "reason": i.reason}
            for i in providers.list_models()]


def _preferences_path() -> Path:
    from workbench.config import get_settings

    return get_settings().home / PREFERENCES_FILE


@dataclass
class ContextProviders:
    """Where each provider reads from (tests pass their own)."""

    docs_root: Path = PACKAGE_ROOT
    health: Callable[[], list[dict[str, Any]]] = _light_health
    models: Callable[[], list[dict[str, Any]]] = _models
    preferences: Callable[[], Path] = _preferences_path

    # --- resources ---------------------------------------------------------------------------------

    def resources(self, profile: Profile) -> list[types.Resource]:
        """The resources this profile may read (a refused provider is not listed)."""
        listed = []
        if _repo_denial(profile, "list_files") is None:
            listed += [_resource("repo/files", "Repository files", "The files of the repository (git ls-files).",
                                 "application/json"),
                       _resource("repo/log", "Repository log", f"Its last {MAX_LOG_COMMITS} commits.",
                                 "text/plain")]
        if _context_denial(profile, "docs") is None:
            listed += [_resource(f"docs/{name}", f"Docs: {name}", "Workbench documentation.", "text/markdown")
                       for name in self.doc_names()]
        if _context_denial(profile, "env") is None:
            listed.append(_resource("env", "Environment", "Versions, models and health of this workbench.",
                                    "application/json"))
        if _context_denial(profile, "preferences") is None:
            listed.append(_resource("preferences", "User preferences",
                                    f"The user's preferences (WORKBENCH_HOME/{PREFERENCES_FILE}).", "text/markdown"))
        return listed

    def templates(self, profile: Profile) -> list[types.ResourceTemplate]:
        if _repo_denial(profile, "read_file") is not None:
            return []
        return [types.ResourceTemplate(uri_template=f"{SCHEME}repo/file/{{path}}", name="Repository file",
                                       description="One text file of the repository, by its relative path.")]

    def read(self, profile: Profile, uri: str) -> tuple[str, str]:
        """(text, MIME type) of one resource; ContextRefused or ToolError saying why not."""
        if not uri.startswith(SCHEME):
            raise ToolError(f"Unknown resource {uri[:200]!r}: resources/list shows the {SCHEME}... URIs.")
        path = uri[len(SCHEME):]
        if path == "repo/files":
            return json.dumps(self.repo_files(profile)), "application/json"
        if path == "repo/log":
            return self.repo_log(profile), "text/plain"
        if path.startswith("repo/file/"):
            return self.repo_file(profile, path.removeprefix("repo/file/")), "text/plain"
        if path.startswith("docs/"):
            return self.doc(profile, path.removeprefix("docs/")), "text/markdown"
        if path == "env":
            return json.dumps(self.env(profile), indent=1, default=str), "application/json"
        if path == "preferences":
            return self.user_preferences(profile), "text/markdown"
        raise ToolError(f"Unknown resource {uri[:200]!r}: resources/list shows the {SCHEME}... URIs.")

    def repo_files(self, profile: Profile) -> list[str]:
        root = _repo_root(profile, "list_files")
        listed = _git(root, "ls-files", "-z")
        files = [f for f in listed.split("\0") if f] if listed is not None else _walk(root)
        return files[:MAX_FILES]

    def repo_log(self, profile: Profile) -> str:
        root = _repo_root(profile, "list_files")
        log = _git(root, "log", f"-n{MAX_LOG_COMMITS}", "--date=short", "--format=%h %ad %an%n    %s")
        if log is None:
            raise ToolError(f"{root} is not a git repository, so it has no log.")
        return log

    def repo_file(self, profile: Profile, relative: str) -> str:
        _repo_root(profile, "read_file")
        path = confine(relative, list(profile.roots))  # ToolRefused: outside, `..`, a link out, a secret
        text, cut = nofollow.read_text(path, MAX_RESOURCE_BYTES)
        return text + (f"\n[... cut at {MAX_RESOURCE_BYTES:,} bytes]" if cut else "")

    def doc_names(self) -> list[str]:
        names = ["README.md"] if (self.docs_root / "README.md").is_file() else []
        docs = self.docs_root / "docs"
        if docs.is_dir():
            names += sorted(p.relative_to(docs).as_posix() for p in docs.rglob("*.md") if not p.is_symlink())
        return names

    def doc(self, profile: Profile, name: str) -> str:
        _require(_context_denial(profile, "docs"))
        if name not in self.doc_names():  # only the listed pages: no path is ever built from the name alone
            raise ToolError(f"No documentation page {name[:200]!r}; resources/list shows them.")
        path = self.docs_root / name if name == "README.md" else self.docs_root / "docs" / name
        return nofollow.read_text(path, MAX_RESOURCE_BYTES)[0]

    def env(self, profile: Profile) -> dict[str, Any]:
        _require(_context_denial(profile, "env"))
        versions = {"python": platform.python_version()}
        for name in VERSIONED:
            try:
                versions[name] = version(name)
            except PackageNotFoundError:
                versions[name] = None
        return {"versions": versions, "platform": platform.platform(), "models": self.models(),
                "health": self.health()}

    def user_preferences(self, profile: Profile) -> str:
        _require(_context_denial(profile, "preferences"))
        path = self.preferences()
        if not path.exists():
            return f"(no preferences yet: write them, as plain text or Markdown, to {path})"
        return nofollow.read_text(path, MAX_RESOURCE_BYTES)[0]

    # --- prompts -----------------------------------------------------------------------------------

    def prompts(self, profile: Profile) -> list[types.Prompt]:
        listed = []
        if _repo_denial(profile, "read_file") is None:
            listed.append(types.Prompt(name="review_file", description="Review one file of the repository.",
                                       arguments=[types.PromptArgument(name="path", required=True,
                                                                       description="The file, relative to the root.")]))
        if _repo_denial(profile, "list_files") is None:
            listed.append(types.Prompt(name="recent_changes", description="Summarise the repository's last commits."))
        if _context_denial(profile, "preferences") is None:
            listed.append(types.Prompt(name="with_preferences", description="A question, answered the user's way.",
                                       arguments=[types.PromptArgument(name="question", required=True,
                                                                       description="What to ask.")]))
        return listed

    def prompt(self, profile: Profile, name: str, arguments: dict[str, str]) -> tuple[str, str]:
        """(description, the user message) of one prompt, its arguments filled in."""
        if name == "review_file":
            path = _argument(arguments, "path")
            text = self.repo_file(profile, path)
            return (f"Review {path}", f"Review the file {path}: point out bugs, unclear code and missing tests, "
                                      f"most important first.\n\n--- {path} ---\n{text}")
        if name == "recent_changes":
            return ("Recent changes", "Summarise what changed recently in this repository, grouped by topic, "
                                      f"from its log:\n\n{self.repo_log(profile)}")
        if name == "with_preferences":
            question = _argument(arguments, "question")
            return ("A question under the user's preferences",
                    f"Answer following these preferences of the user:\n{self.user_preferences(profile)}\n\n"
                    f"Question: {question}")
        raise ToolError(f"There is no prompt {name[:80]!r}; prompts/list shows them.")


def _resource(path: str, title: str, description: str, mime: str) -> types.Resource:
    return types.Resource(uri=f"{SCHEME}{path}", name=path, title=title, description=description, mime_type=mime)


def _context_denial(profile: Profile, provider: str) -> str | None:
    if "*" in profile.context or provider in profile.context:
        return None
    return (f"Refused: the MCP profile {profile.name!r} does not include the context provider {provider!r} "
            f"(it has {', '.join(profile.context) or 'none'}). Add it to the profile's `context` list.")


def _repo_denial(profile: Profile, tool: str) -> str | None:
    denied = _context_denial(profile, "repo")
    if denied is None and not profile.allows(tool):
        denied = (f"Refused: reading the repository needs the tool {tool} in the MCP profile {profile.name!r}; "
                  f"add it to the profile's tools.")
    if denied is None and not profile.roots:
        denied = f"Refused: the MCP profile {profile.name!r} has no roots, so there is no repository to read."
    return denied


def _require(denied: str | None) -> None:
    if denied is not None:
        raise ContextRefused(denied)


def _repo_root(profile: Profile, tool: str) -> Path:
    _require(_repo_denial(profile, tool))
    return profile.roots[0]


def _argument(arguments: dict[str, str], name: str) -> str:
    value = (arguments or {}).get(name)
    if not isinstance(value, str) or not value.strip():
        raise ToolError(f"This prompt needs the argument {name!r}.")
    return value


def _git(root: Path, *args: str) -> str | None:
    """git's output in `root`, or None when it is not a repository (or git is missing)."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                              timeout=GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _walk(root: Path) -> list[str]:
    files = []
    for path in sorted(root.rglob("*")):
        if len(files) >= MAX_FILES:
            break
        if path.is_file() and not path.is_symlink():
            files.append(path.relative_to(root).as_posix())
    return files


def record(profile: Profile, what: str, name: str, denied: str | None, error: str | None, started: float) -> None:
    """One event per resource read or prompt got, as the tools' calls are recorded."""
    telemetry.emit("tool_call", duration_ms=(time.perf_counter() - started) * 1000, error=error or denied,
                   payload={"via": "mcp", "client": profile.name, "tool": f"{what}:{name[:200]}", what: name[:200],
                            "denied": denied, "refused": denied is not None})


def guarded(profile: Profile, what: str, name: str, fn: Callable[[], Any]) -> Any:
    """fn() recorded; a refusal or error becomes an MCPError with the fix-it message (never a traceback)."""
    from mcp.shared.exceptions import MCPError

    started = time.perf_counter()
    try:
        value = fn()
    except (ContextRefused, ToolRefused) as exc:
        record(profile, what, name, str(exc), None, started)
        raise MCPError(code=-32602, message=str(exc)) from None
    except (ToolError, WorkbenchError, OSError) as exc:
        message = str(exc) if not isinstance(exc, OSError) else f"Cannot read it: {exc.strerror}"
        record(profile, what, name, None, message, started)
        raise MCPError(code=-32602, message=message) from None
    record(profile, what, name, None, None, started)
    return value
