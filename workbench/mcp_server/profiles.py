"""Who may do what over MCP: per-client profiles (which tools, which folders, read-only or not), enforced here.

A profiles file (WORKBENCH_MCP_PROFILES) names one profile per client; the server runs as one of them
(`workbench mcp serve --profile NAME`, default WORKBENCH_MCP_PROFILE or "default"):

    profiles:
      default:                      # what an MCP client gets without asking
        tools: [read_file, list_files, search_files, query_db, task_status, task_result]
        roots: [~/notes]            # relative roots are taken from this file's folder
      editor:
        tools: ["*"]                # every tool
        roots: [~/projects/site]
        read_only: false
        context: [repo, docs]       # resources and prompts it may read (default "*": repo, docs, env, preferences)

Without a file, the built-in profile "default" is read-only over the agents' workspace. A read-only profile
is refused every tool that changes something, even one it lists; a tool it does not list is refused too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workbench.errors import ConfigError
from workbench.tools import Tool

ALL = "*"
READ_ONLY_TOOLS = ("read_file", "list_files", "search_files", "query_db", "task_status", "task_result")


class Profile(BaseModel):
    """One client's rights. `roots` are absolute, resolved folders once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "default"
    tools: tuple[str, ...] = Field(READ_ONLY_TOOLS, description='Tool names, or "*" for every tool.')
    roots: tuple[Path, ...] = Field((), description="Folders the file tools may reach (the first: relative paths).")
    read_only: bool = True
    context: tuple[str, ...] = Field(("*",), description='Context providers it may read (repo, docs, env, '
                                                        'preferences), or "*" for all.')

    def allows(self, name: str) -> bool:
        return ALL in self.tools or name in self.tools


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profiles: dict[str, Profile]


def denial(profile: Profile, name: str, tool: Tool | None) -> str | None:
    """Why `profile` may not call the tool `name` (None: it may). The reason is shown to the client."""
    if tool is None:
        return f"There is no tool {name[:80]!r}. `workbench mcp tools` lists them (tools/list too)."
    if not profile.allows(name):
        return (f"Refused: tool {name} is not in the MCP profile {profile.name!r} (it allows "
                f"{', '.join(profile.tools) or 'nothing'}). Add it to the profile's tools in WORKBENCH_MCP_PROFILES.")
    if tool.path_params and not profile.roots:
        return (f"Refused: {name} works on files and the MCP profile {profile.name!r} has no roots. "
                f"List the folders it may reach under its roots.")
    if profile.read_only and not tool.read_only:
        return (f"Refused: the MCP profile {profile.name!r} is read-only and {name} changes things. "
                f"Use a profile with read_only: false for it.")
    return None


def default_profile(roots: list[Path]) -> Profile:
    """The built-in profile: read-only tools over `roots`."""
    return Profile(name="default", roots=_checked_roots(roots, Path.cwd(), "the built-in profile"))


def load_profile(path: Path, name: str, known: Mapping[str, Tool]) -> Profile:
    """Profile `name` from the YAML file `path`, its tools checked against `known` and its roots resolved."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        parsed = _File.model_validate(raw)
    except OSError as exc:
        raise ConfigError(f"Cannot read the MCP profiles file {path}: {exc.strerror}. Fix WORKBENCH_MCP_PROFILES "
                          f"or unset it for the built-in read-only profile.") from None
    except (yaml.YAMLError, ValidationError) as exc:
        first = str(exc).splitlines()[:3]
        raise ConfigError(f"The MCP profiles file {path} is not valid: {' '.join(first)}. It holds "
                          f"`profiles: {{NAME: {{tools: [...], roots: [...], read_only: true}}}}`.") from None
    if name not in parsed.profiles:
        raise ConfigError(f"No MCP profile {name!r} in {path}; it has {', '.join(parsed.profiles) or 'none'}. "
                          f"Pass --profile with one of them (or set WORKBENCH_MCP_PROFILE).")
    profile = parsed.profiles[name]
    unknown = [t for t in profile.tools if t != ALL and t not in known]
    if unknown:
        raise ConfigError(f"MCP profile {name!r} in {path} names unknown tool(s) {', '.join(unknown)}; "
                          f"the tools are {', '.join(known)}.")
    roots = _checked_roots(list(profile.roots), path.parent, f"profile {name!r} in {path}")
    return profile.model_copy(update={"name": name, "roots": roots})


def _checked_roots(roots: list[Path], base: Path, where: str) -> tuple[Path, ...]:
    checked = []
    for root in roots:
        resolved = (base / Path(root).expanduser()).resolve()
        if resolved == Path("/"):
            raise ConfigError(f"The root / in {where} would open the whole machine to MCP clients; "
                              f"name the project folders they need instead.")
        if not resolved.is_dir():
            raise ConfigError(f"The root {resolved} in {where} is not a folder; create it or fix the path.")
        checked.append(resolved)
    return tuple(checked)


def configured_profile(name: str | None, roots: list[Path], known: Mapping[str, Tool]) -> Profile:
    """The profile `workbench mcp serve` runs as: `name` (else WORKBENCH_MCP_PROFILE) from WORKBENCH_MCP_PROFILES,
    or without that file the built-in read-only one over `roots` (else the agents' workspace)."""
    from workbench.config import get_settings

    settings = get_settings()
    if settings.mcp_profiles is not None:
        if roots:
            raise ConfigError("--root applies to the built-in profile only; with WORKBENCH_MCP_PROFILES set, "
                              "list the roots in the profile instead.")
        return load_profile(settings.mcp_profiles, name or settings.mcp_profile, known)
    if (name or settings.mcp_profile) != "default":
        raise ConfigError(f"No MCP profile {name or settings.mcp_profile!r}: without WORKBENCH_MCP_PROFILES only "
                          f"the built-in read-only profile 'default' exists. Point WORKBENCH_MCP_PROFILES at a "
                          f"profiles file to define others.")
    if not roots:
        workspace = settings.agent_workspace or settings.home / "workspace"
        workspace.mkdir(parents=True, exist_ok=True)
        roots = [workspace]
    return default_profile(roots)
