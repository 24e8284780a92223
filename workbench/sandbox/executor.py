"""The Executor interface every sandbox backend implements, and what a run takes and gives back:
Limits in, ExecResult out, input files and commands checked before any backend sees them.

It sits below the backends (bwrap, docker, host) and the runtimes, which all import it; it imports
none of them.
"""

from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path, PurePosixPath

from workbench.errors import SandboxError
from workbench.sandbox.toolchain import Toolchain

WORKDIR = "/work"
MAX_INPUT_FILES = 2000


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run. Memory and disk are in MiB; output caps are in bytes."""

    timeout_s: float = 30.0  # wall clock; the whole sandbox is killed at the deadline
    memory_mb: int = 512  # cgroup memory + RLIMIT_DATA (heap), per run
    cpu_s: int | None = None  # RLIMIT_CPU per process; default: the timeout rounded up, plus one
    processes: int = 256  # pids cgroup + RLIMIT_NPROC (threads count: the JVM needs ~40)
    disk_mb: int = 64  # size of the work directory's tmpfs (/tmp points into it)
    open_files: int = 512
    cpus: float | None = 1.0  # CPU share through the cpu cgroup (None = unlimited)
    output_bytes: int = 1_000_000  # kept per stream (stdout, stderr); the rest is counted, not kept
    flood_bytes: int = 64_000_000  # stdout+stderr beyond this kills the run (it only wastes time)
    files_bytes: int = 8_000_000  # produced files returned, in total
    max_files: int = 500

    @property
    def cpu_seconds(self) -> int:
        return self.cpu_s if self.cpu_s is not None else math.ceil(self.timeout_s) + 1

    def merged(self, **changes) -> Limits:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass
class ExecResult:
    """What a run did. `exit_code` is the program's status (128+N when signal N killed it; -9 when
    the sandbox was killed from outside, e.g. at the timeout)."""

    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    timed_out: bool = False
    killed_reason: str | None = None  # why the run was stopped or a process killed, in words
    files: dict[str, bytes] = field(default_factory=dict)  # files the run created or changed
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    files_truncated: bool = False
    stdout_bytes: int = 0  # bytes the program wrote, including what was not kept
    stderr_bytes: int = 0
    backend: str = ""
    limits: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # degradations, e.g. "no cgroup: ..."
    peak_memory_mb: float | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.killed_reason is None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def as_dict(self, with_files: bool = False) -> dict:
        d = asdict(self)
        d["ok"] = self.ok
        files = d.pop("files")
        d["files"] = ({k: v.decode("utf-8", "replace") for k, v in files.items()} if with_files
                      else {k: len(v) for k, v in files.items()})
        return d


class Executor(ABC):
    """One way of running code in isolation. Subclasses implement `execute` and `available`."""

    name: str = "executor"
    isolated: bool = True

    def run(self, command: list[str], files: Mapping[str, str | bytes] | None = None, *,
            limits: Limits | None = None, env: Mapping[str, str] | None = None,
            language: str | None = None) -> ExecResult:
        """Run `command` in a fresh work directory holding `files` (relative path -> content)."""
        check_command(command, env)
        return self.execute(command, check_files(files), limits or default_limits(), dict(env or {}), language)

    @abstractmethod
    def execute(self, command: list[str], inputs: dict[str, bytes], limits: Limits, env: dict[str, str],
                language: str | None) -> ExecResult:
        """`run` after its arguments are checked: file names validated, limits defaulted."""

    @classmethod
    @abstractmethod
    def available(cls) -> tuple[bool, str]:
        """(usable here?, why or why not) — cheap enough to call on start-up."""

    def tools(self) -> dict[str, str]:
        """Paths of the runtimes as the sandboxed program sees them (see toolchain.Toolchain)."""
        return Toolchain.from_settings().paths()


def check_files(files: Mapping[str, str | bytes] | None) -> dict[str, bytes]:
    """Validate and encode input files: relative POSIX paths only, no '..', no absolute paths."""
    out: dict[str, bytes] = {}
    for name, content in (files or {}).items():
        path = PurePosixPath(name)
        if not name or path.is_absolute() or ".." in path.parts or "\0" in name or name.startswith("./."):
            raise SandboxError(f"Bad file name {name!r}: use a relative path inside the work directory "
                               f"(no leading '/', no '..').")
        out[str(path)] = content.encode() if isinstance(content, str) else bytes(content)
    if len(out) > MAX_INPUT_FILES:
        raise SandboxError(f"{len(out)} input files; at most {MAX_INPUT_FILES} can be sent to the sandbox.")
    return out


def check_command(command: list[str], env: Mapping[str, str] | None) -> None:
    """A command and environment that survive the trip through the shell header unchanged."""
    if not command:
        raise SandboxError("Nothing to run: give a command, e.g. ['python', 'main.py'].")
    if any("\0" in str(arg) for arg in command):
        raise SandboxError("A command argument contains a NUL byte, which no program can receive.")
    for key, value in (env or {}).items():
        if not key or key[0].isdigit() or not key.replace("_", "a").isalnum() or not key.isascii():
            raise SandboxError(f"Bad environment variable name {key!r}: use letters, digits and '_'.")
        if "\0" in value:
            raise SandboxError(f"The value of {key} contains a NUL byte.")


def files_from_path(path: str | Path, max_bytes: int = 32_000_000) -> dict[str, bytes]:
    """Read a file or a directory tree into {relative path: bytes} for `Executor.run`.

    Symlinks are skipped, never followed: a link in the user's tree must not pull host files in.
    """
    root = Path(path)
    if not root.exists():
        raise SandboxError(f"{root} does not exist: give a file or a directory to run.")
    if root.is_file():
        return {root.name: root.read_bytes()}
    files: dict[str, bytes] = {}
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if d not in {".git", "__pycache__", "node_modules", ".venv"})
        for name in sorted(filenames):
            full = Path(dirpath) / name
            if full.is_symlink() or not full.is_file():
                continue
            data = full.read_bytes()
            total += len(data)
            if total > max_bytes:
                raise SandboxError(f"{root} holds more than {max_bytes // 1_000_000} MB; run a smaller directory.")
            files[full.relative_to(root).as_posix()] = data
    if not files:
        raise SandboxError(f"{root} holds no files to run.")
    return files


def default_limits() -> Limits:
    from workbench.config import get_settings

    s = get_settings()
    return Limits(timeout_s=s.sandbox_timeout_s, memory_mb=s.sandbox_memory_mb, disk_mb=s.sandbox_disk_mb,
                  processes=s.sandbox_processes, output_bytes=s.sandbox_output_bytes, cpus=s.sandbox_cpus or None)
