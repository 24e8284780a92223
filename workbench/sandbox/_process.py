"""Supervise one sandboxed process: feed its input files, read its output with caps, enforce the
wall clock, collect the files it produced. Shared by the bwrap and unsafe-host backends.

Inside the sandbox a tiny POSIX shell script (SHIM) runs first. Its stdin is one end of a socket
pair, on which the parent sends a header (the command and its environment, as shell-quoted lines
ending in a random sentinel line), then a tar of the input files, then shuts its sending side. The
shim runs the command with stdin from /dev/null and streams a tar of the work directory back
through the same socket. Because the command arrives on the socket, a sandbox can be started ahead
of time and wait there (the bwrap backend keeps one warm). (A separate control pipe would need a
file descriptor above 9, which dash cannot redirect.) Everything the program could put in the
returned tar is untrusted output: the parent only reads it into memory with caps, never extracts
it to disk, and skips anything not a regular file.
"""

from __future__ import annotations

import io
import os
import selectors
import shlex
import signal
import socket
import subprocess
import tarfile
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from workbench import telemetry
from workbench.sandbox.executor import ExecResult, Limits

CHUNK = 65536
# Work-directory entries that are caches or scratch, never results.
SKIP_DIRS = (".tmp", "__pycache__", ".pytest_cache", "node_modules", ".workbench-cache")

# $1 work dir, $2 the header's end line. The header sets inp=1 when an input tar follows, exports
# the environment and `set -- COMMAND...`. No header (the parent dropped a warm sandbox): exit 0.
# Exit 125 + a "workbench:" line on stderr means the inputs could not be unpacked.
SHIM = r"""
wd=$1; end=$2; shift 2
cd "$wd" || exit 125
hdr=
while IFS= read -r l; do [ "$l" = "$end" ] && break; hdr="$hdr$l
"; done
[ -n "$hdr" ] || exit 0
inp=0
eval "$hdr"
[ -d .tmp ] || mkdir .tmp
if [ "$inp" = 1 ]; then
  tar -x -f - -o 2>/dev/null || { echo "workbench: the input files do not fit in the sandbox's disk limit" >&2; exit 125; }
fi
"$@" </dev/null
rc=$?
# One marker byte, then the tar: "E" = nothing but .tmp in the work dir (saves a tar process),
# "T" = a tar follows. No marker at all means this shell was killed before the program ended.
set -- * .[!.]* ..?*
x="--exclude=./.tmp --exclude=__pycache__ --exclude=./.pytest_cache --exclude=./node_modules"
for f; do [ -e "$f" ] && [ "$f" != .tmp ] && { printf T >&0; tar -c -f - $x . 2>/dev/null >&0; exit $rc; }; done
printf E >&0
exit $rc
"""


def header(command: list[str], env: Mapping[str, str], has_input: bool, end: str) -> bytes:
    """The lines the SHIM evals: environment, input flag, command; then the end line."""
    lines = [f"export {key}={shlex.quote(value)}" for key, value in env.items()]
    lines.append(f"inp={1 if has_input else 0}")
    lines.append("set -- " + " ".join(shlex.quote(arg) for arg in command))
    return ("\n".join(lines) + f"\n{end}\n").encode()


def new_end_line() -> str:
    return f"__workbench_end_{uuid.uuid4().hex}__"


def make_tar(files: Mapping[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        dirs: set[str] = set()
        for name, data in files.items():
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                d = "/".join(parts[:i])
                if d not in dirs:
                    dirs.add(d)
                    info = tarfile.TarInfo(d)
                    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
                    tar.addfile(info)
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class _Capped:
    """Keeps the first `cap` bytes, counts the rest."""

    def __init__(self, cap: int):
        self.cap, self.buf, self.total = cap, bytearray(), 0

    def feed(self, data: bytes) -> None:
        room = self.cap - len(self.buf)
        if room > 0:
            self.buf += data[:room]
        self.total += len(data)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.buf)


@dataclass
class Outcome:
    returncode: int
    stdout: _Capped
    stderr: _Capped
    tar: _Capped
    duration_s: float
    timed_out: bool = False
    flooded: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass
class Spawned:
    """A started SHIM waiting for its header on `sock`."""

    proc: subprocess.Popen
    sock: socket.socket
    end: str
    kill_extra: Callable[[], None]
    started_at: float

    def alive(self) -> bool:
        return self.proc.poll() is None

    def discard(self) -> None:
        """Close a sandbox that was never used: EOF before a header makes the shim exit."""
        try:
            self.sock.close()
            self.proc.communicate(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            _killpg(self.proc)
            self.kill_extra()
            self.proc.communicate()


def _killpg(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def spawn(argv_before_shim: list[str], workdir: str, *, env: dict[str, str], cwd: str | None = None,
          kill_extra: Callable[[], None] = lambda: None, child_fds: tuple[int, ...] = (),
          started: Callable[[subprocess.Popen], None] | None = None, user: int | None = None) -> Spawned:
    """Start `argv_before_shim + SHIM`; it waits for a header. `child_fds` are passed to the child
    too; `started(proc)` runs right after the spawn (the bwrap backend moves the sandbox into its
    cgroup there); if it raises, the process is killed and the error propagates."""
    end = new_end_line()
    ours, theirs = socket.socketpair()
    start = time.perf_counter()
    try:
        proc = subprocess.Popen(
            [*argv_before_shim, "/bin/sh", "-c", SHIM, "shim", workdir, end], stdin=theirs.fileno(),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=child_fds, env=env, cwd=cwd,
            start_new_session=True,  # its own process group: the timeout kills the whole group
            # A fresh unprivileged uid (set in C, so safe in a threaded parent); no supplementary groups.
            **({"user": user, "group": user, "extra_groups": []} if user is not None else {}),
        )
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
    if started is not None:
        try:
            started(proc)
        except BaseException:
            _killpg(proc)
            kill_extra()
            proc.communicate()
            ours.close()
            raise
    return Spawned(proc, ours, end, kill_extra, start)


def pump(sp: Spawned, command: list[str], *, env: Mapping[str, str], limits: Limits, input_tar: bytes | None,
         start: float | None = None) -> Outcome:
    """Send the command and input files, read the output with caps, kill everything at the deadline."""
    proc, ours = sp.proc, sp.sock
    start = time.perf_counter() if start is None else start
    payload = header(command, env, input_tar is not None, sp.end) + (input_tar or b"")
    out = Outcome(0, _Capped(limits.output_bytes), _Capped(limits.output_bytes),
                  _Capped(limits.files_bytes * 2 + 1_000_000), 0.0)
    sock = ours.fileno()
    sinks = {proc.stdout.fileno(): out.stdout, proc.stderr.fileno(): out.stderr, sock: out.tar}

    def kill() -> None:
        _killpg(proc)
        sp.kill_extra()

    sel = selectors.DefaultSelector()
    ours.setblocking(False)
    for fd in sinks:
        os.set_blocking(fd, False)
    pending = memoryview(payload)
    for fd in (proc.stdout.fileno(), proc.stderr.fileno()):
        sel.register(fd, selectors.EVENT_READ)
    sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    deadline = start + limits.timeout_s
    stop_at: float | None = None  # after a kill or exit: how long stragglers may keep pipes open
    try:
        while sel.get_map():
            now = time.perf_counter()
            if stop_at is None and now >= deadline:
                out.timed_out = True
                kill()
                stop_at = now + 1.0
            if stop_at is None and proc.poll() is not None:
                # Normally the pipes close with the sandbox; an unsafe-host daemon could hold them.
                stop_at = now + 0.5
            if stop_at is not None and now >= stop_at:
                break
            wait = (stop_at if stop_at is not None else deadline) - now
            for key, events in sel.select(timeout=min(max(wait, 0.0), 0.25)):
                fd = key.fd
                if fd == sock and events & selectors.EVENT_WRITE and len(pending):
                    try:
                        pending = pending[ours.send(pending[:CHUNK]):]
                    except BlockingIOError:
                        pass
                    except OSError:  # the shell is gone: stop sending
                        pending = pending[len(pending):]
                    if not len(pending):
                        try:
                            ours.shutdown(socket.SHUT_WR)  # end of input: the shim's tar -x sees EOF
                        except OSError:
                            pass
                        sel.modify(sock, selectors.EVENT_READ)
                if not events & selectors.EVENT_READ:
                    continue
                try:
                    data = ours.recv(CHUNK) if fd == sock else os.read(fd, CHUNK)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    sinks[fd].feed(data)
                    if stop_at is None and out.stdout.total + out.stderr.total > limits.flood_bytes:
                        out.flooded = True
                        kill()
                        stop_at = time.perf_counter() + 1.0
                else:
                    sel.unregister(fd)
        if proc.poll() is None and stop_at is not None:
            kill()  # something still holds the pipes after the program ended (a daemon): end it
    finally:
        sel.close()
        proc.stdout.close()
        proc.stderr.close()
        ours.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            kill()
            proc.wait()
    out.returncode = proc.returncode
    out.duration_s = time.perf_counter() - start
    return out


def supervise(argv_before_shim: list[str], workdir: str, command: list[str], *, env: dict[str, str],
              run_env: Mapping[str, str], limits: Limits, input_tar: bytes | None, **spawn_options) -> Outcome:
    """spawn + pump: start the shim and run `command` in it at once (the cold path)."""
    sp = spawn(argv_before_shim, workdir, env=env, **spawn_options)
    return pump(sp, command, env=run_env, limits=limits, input_tar=input_tar, start=sp.started_at)


def read_files(tar_bytes: bytes, inputs: Mapping[str, bytes], limits: Limits) -> tuple[dict[str, bytes], bool]:
    """Regular files from the shim's tar that are new or changed, within limits; (files, truncated)."""
    files: dict[str, bytes] = {}
    total, truncated = 0, False
    try:
        with tarfile.open(fileobj=io.BytesIO(tar_bytes), mode="r|") as tar:
            for member in tar:
                name = os.path.normpath(member.name)
                if name == "." or not member.isreg() or name.startswith("/") or ".." in name.split("/"):
                    continue
                if any(part in SKIP_DIRS for part in name.split("/")[:-1]):
                    continue
                if len(files) >= limits.max_files or total + member.size > limits.files_bytes:
                    truncated = True
                    continue
                handle = tar.extractfile(member)
                data = handle.read() if handle else b""
                if inputs.get(name) == data:
                    continue
                files[name] = data
                total += len(data)
    except (tarfile.TarError, EOFError, OSError):
        truncated = truncated or bool(tar_bytes)
    return files, truncated


SIGNAL_REASONS = {
    signal.SIGXCPU: "CPU time limit reached (SIGXCPU)",
    signal.SIGXFSZ: "file size limit reached (SIGXFSZ)",
    signal.SIGKILL: "killed (SIGKILL)",
    signal.SIGSEGV: "crashed (SIGSEGV)",
    signal.SIGABRT: "aborted (SIGABRT)",
}


def decode(capped: _Capped, what: str) -> str:
    text = bytes(capped.buf).decode("utf-8", "replace")
    if capped.truncated:
        text += (f"\n[workbench: {what} truncated: {len(capped.buf):,} of {capped.total:,} bytes shown]\n")
    return text


def to_result(out: Outcome, inputs: Mapping[str, bytes], limits: Limits, backend: str,
              notes: list[str], *, oom: bool = False, pids_hit: bool = False, peak: int | None = None,
              expect_tar: bool = True) -> ExecResult:
    """Turn a supervised outcome into the ExecResult callers see, with a reason for every kill."""
    reason = None
    rc = out.returncode
    if out.timed_out:
        reason = f"wall-clock timeout after {limits.timeout_s:g} s: the whole sandbox was killed"
    elif out.flooded:
        reason = (f"output flood: more than {limits.flood_bytes // 1_000_000} MB on stdout/stderr, "
                  f"the run was stopped")
    elif oom:
        reason = f"memory limit ({limits.memory_mb} MiB) exceeded: the kernel killed a process"
    elif rc > 128:
        try:
            sig = signal.Signals(rc - 128)
            reason = SIGNAL_REASONS.get(sig)
        except ValueError:
            reason = None
    marker, tar_bytes = bytes(out.tar.buf[:1]), bytes(out.tar.buf[1:])
    files, files_truncated = read_files(tar_bytes, inputs, limits) if marker == b"T" else ({}, False)
    notes = list(notes) + out.notes
    if pids_hit:
        notes.append(f"process limit ({limits.processes}) reached: some fork()/clone() calls failed")
    if expect_tar and not out.tar.buf and not (out.timed_out or out.flooded or oom):
        notes.append("no files were collected: the sandbox shell was killed before the program ended "
                     "(did the program kill its parent?)")
        reason = "the sandbox's supervising shell was killed (by the program?), which ended the run"
    if out.tar.truncated:
        files_truncated = True
    return ExecResult(
        exit_code=rc, stdout=decode(out.stdout, "stdout"), stderr=decode(out.stderr, "stderr"),
        duration_s=out.duration_s, timed_out=out.timed_out, killed_reason=reason, files=files,
        stdout_truncated=out.stdout.truncated, stderr_truncated=out.stderr.truncated,
        files_truncated=files_truncated, stdout_bytes=out.stdout.total, stderr_bytes=out.stderr.total,
        backend=backend, limits=limits_dict(limits), notes=notes,
        peak_memory_mb=round(peak / 2**20, 1) if peak else None,
    )


def log_run(result: ExecResult, command: list[str], language: str | None) -> None:
    """One sandbox_run event per run (recorded where a sink, such as an open store, is registered)."""
    error = result.killed_reason or (f"exit {result.exit_code}" if result.exit_code else None)
    telemetry.emit("sandbox_run", duration_ms=result.duration_s * 1000, error=error, payload={
        "backend": result.backend, "language": language, "command": [c[:2000] for c in command[:20]],
        "exit_code": result.exit_code, "timed_out": result.timed_out, "killed_reason": result.killed_reason,
        "stdout_tail": result.stdout[-2000:], "stderr_tail": result.stderr[-2000:],
        "stdout_bytes": result.stdout_bytes, "stderr_bytes": result.stderr_bytes,
        "files": {k: len(v) for k, v in result.files.items()}, "limits": result.limits, "notes": result.notes,
        "peak_memory_mb": result.peak_memory_mb})


def limits_dict(limits: Limits) -> dict:
    from dataclasses import asdict

    d = asdict(limits)
    d["cpu_s"] = limits.cpu_seconds
    return d
