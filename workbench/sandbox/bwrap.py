"""The default sandbox: bubblewrap + rlimits + a pids/memory/cpu cgroup + an unprivileged uid.

Layers (each holds on its own; together they are the sandbox):
  uid        when we are root, bwrap starts as a fresh unprivileged host uid per run, so
             RLIMIT_NPROC applies (root ignores it) and nothing inside is root on the host.
  bwrap      new user/pid/net/ipc/uts/cgroup namespaces (--unshare-all; only `lo` exists), no
             nested user namespaces, --die-with-parent, --new-session (no TIOCSTI on our tty),
             --clearenv; / is an empty read-only tmpfs with /usr, the toolchain and a few /etc
             entries bound read-only; /work is a size-capped tmpfs (/tmp points into it), /dev/shm
             a small capped tmpfs. The repo, data/, $HOME and /etc/* secrets are simply not there.
  rlimits    RLIMIT_CPU, _DATA (heap), _FSIZE, _NOFILE, _NPROC, _CORE=0 (prlimit execs bwrap).
  cgroup     pids.max (fork bombs), a memory limit that also counts tmpfs pages (hogs, disk
             fillers) and a CPU share, applied from outside to the sandbox's first process while
             it waits on --block-fd, before any sandboxed code runs; its descendants inherit it.
  timeout    the parent kills the process group at the wall-clock deadline; --die-with-parent and
             the PID namespace take every descendant (double-forked daemons included) with it.

Warm start: right after a run, the executor starts the next sandbox for the same limits in the
background (one thread for the whole process: --die-with-parent fires when the *thread* that
forked bwrap exits). It waits, fully isolated and in its cgroup, for its command on the socket, so
the next run skips the ~15-50 ms start-up. Each sandbox still serves exactly one run.
"""

from __future__ import annotations

import atexit
import functools
import glob
import os
import queue
import random
import shutil
import subprocess
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import SandboxError
from workbench.sandbox._process import Spawned, log_run, make_tar, pump, spawn, to_result
from workbench.sandbox.cgroups import Cgroup, CgroupUnavailable
from workbench.sandbox.executor import WORKDIR, ExecResult, Executor, Limits
from workbench.sandbox.toolchain import Toolchain

# Read-only from the host: what runtimes need under /etc (symlink targets of the JDK and of
# /usr/bin/java, the loader cache). Nothing else of /etc is visible (no passwd, shadow, hosts, ssl).
# The JDK's directory is named by its version (java-17-openjdk on Debian 12, java-21 on 13).
ETC_BINDS = ("/etc/alternatives", "/etc/ld.so.cache")
ETC_JDK_GLOB = "/etc/java-*-openjdk"
MERGED_USR = ("lib", "lib64", "bin", "sbin")
SHM_MB = 16
SANDBOX_UID = 1000  # the uid the program sees inside
HOST_UID_RANGE = (200_000, 260_000)  # unprivileged host uids, one per run (never used by real users)
WARM_MAX_AGE_S = 300  # a waiting sandbox older than this is replaced, not used
MAX_WARM = 4  # waiting sandboxes per executor (one per set of limits: each language has its own)
BASE_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WORKDIR, "TMPDIR": "/tmp", "LANG": "C.UTF-8",
            "USER": "sandbox", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}


@functools.lru_cache(maxsize=1)
def _probe() -> tuple[bool, str]:
    exe = shutil.which("bwrap")
    if not exe:
        return False, "bwrap is not installed"
    try:
        argv = [exe, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
                "--symlink", "usr/lib64", "/lib64", "--remount-ro", "/", "/usr/bin/true"]
        uid = _host_uid()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=20, env={"PATH": "/usr/bin:/bin"},
                              check=False, **({"user": uid, "group": uid, "extra_groups": []} if uid is not None else {}))
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap could not start ({exc})"
    if done.returncode != 0:
        return False, (f"bwrap cannot create namespaces here ({done.stderr.strip()[:200]}); enable "
                       f"unprivileged user namespaces (sysctl user.max_user_namespaces>0) or run as root")
    return True, f"{exe} works ({'a fresh unprivileged uid per run' if os.geteuid() == 0 else 'own uid'})"


def _read_child_pid(fd: int, proc: subprocess.Popen, timeout: float = 20.0) -> int | None:
    """The host pid of the sandbox's first process, from bwrap's --info-fd JSON (None: bwrap failed)."""
    import json
    import select
    import time

    data = b""
    deadline = time.monotonic() + timeout
    while b"}" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise SandboxError(f"bubblewrap did not start within {timeout:g} s; the machine may be overloaded.")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                return None  # bwrap exited before clone(): its stderr says why
            data += chunk
    return int(json.loads(data)["child-pid"])


# Places the sandbox fills with its own mounts: a toolchain bound under one of them would be hidden, or
# (under /tmp, which is a symlink inside) stop bwrap from starting at all.
SANDBOX_OWNED = ("/tmp", WORKDIR, "/proc", "/dev")


def _check_toolchain_place(path: Path) -> None:
    real = os.path.realpath(path)
    for owned in SANDBOX_OWNED:
        if real == owned or real.startswith(owned + "/"):
            raise SandboxError(f"The sandbox toolchain {real} lies under {owned}, which the sandbox replaces with "
                               f"its own, so it could not see the toolchain. Build it elsewhere, outside the repo "
                               f"and home: WORKBENCH_TOOLCHAIN_DIR=/opt/workbench-toolchain make toolchain")


USED_UIDS: set[int] = set()  # host uids this process gave its sandboxes (tests look for leftovers)


def _host_uid() -> int | None:
    """As root: a fresh unprivileged uid per run (root ignores RLIMIT_NPROC; no root after an escape)."""
    if os.geteuid() != 0:
        return None
    uid = random.randrange(*HOST_UID_RANGE)
    USED_UIDS.add(uid)
    return uid


def _prlimit_argv(limits: Limits) -> list[str]:
    """rlimits for bwrap and everything it starts. prlimit(1) lowers its own limits and execs bwrap;
    setting them from outside needs CAP_SYS_RESOURCE (this host lacks it), and preexec_fn is unsafe
    in a threaded parent such as a Dask worker. RLIMIT_DATA rather than _AS: node and the JVM
    reserve far more address space than they use."""
    cpu = limits.cpu_seconds
    return ["prlimit", f"--cpu={cpu}:{cpu + 1}", f"--data={limits.memory_mb * 2**20}",
            f"--fsize={limits.disk_mb * 2**20}", f"--nofile={limits.open_files}",
            f"--nproc={limits.processes}", "--core=0", "--"]


class BwrapExecutor(Executor):
    name = "bwrap"

    def __init__(self, toolchain_dir: str | Path | None = None, warm: bool = True):
        """warm: keep one started sandbox waiting per set of limits, so the next run with the same
        limits skips the start-up; it is started in the background right after each run."""
        from workbench.config import get_settings

        self.toolchain_dir = Path(toolchain_dir or get_settings().toolchain_dir)
        self.warm = warm
        self._pool: dict[tuple, _Slot] = {}
        self._lock = threading.Lock()
        self._closed = False
        self._pid = os.getpid()
        self._pending: dict[tuple, threading.Event] = {}  # background starts in progress
        _EXECUTORS.add(self)

    @classmethod
    def available(cls) -> tuple[bool, str]:
        return _probe()

    def tools(self) -> dict[str, str]:
        return Toolchain(self.toolchain_dir).paths()

    # --- argv -----------------------------------------------------------------------------

    def _bwrap_args(self, limits: Limits, env: Mapping[str, str]) -> list[str]:
        args = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                "--new-session", "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
                "--ro-bind", "/usr", "/usr"]
        for name in MERGED_USR:
            host = Path("/") / name
            if host.is_symlink():
                args += ["--symlink", os.readlink(host).lstrip("/"), str(host)]
            elif host.is_dir():
                args += ["--ro-bind", str(host), str(host)]
        for path in (*ETC_BINDS, *sorted(glob.glob(ETC_JDK_GLOB))):
            args += ["--ro-bind-try", path, path]
        if self.toolchain_dir.is_dir():
            args += ["--ro-bind", str(self.toolchain_dir), str(self.toolchain_dir)]
        args += ["--proc", "/proc", "--dev", "/dev",
                 "--size", str(min(SHM_MB, limits.disk_mb) * 2**20), "--tmpfs", "/dev/shm",
                 "--size", str(limits.disk_mb * 2**20), "--tmpfs", WORKDIR,
                 "--dir", f"{WORKDIR}/.tmp", "--symlink", f"{WORKDIR}/.tmp", "/tmp",
                 # Last: the root tmpfs and /dev would otherwise be writable and uncapped.
                 "--remount-ro", "/dev", "--remount-ro", "/",
                 "--chdir", WORKDIR, "--clearenv"]
        for key, value in {**BASE_ENV, **env}.items():
            args += ["--setenv", key, value]
        return args

    # --- one sandbox -------------------------------------------------------------------------

    def _spawn(self, limits: Limits) -> _Slot:
        """Start a sandbox (cgroup, rlimits, uid, namespaces) that waits for its command."""
        notes: list[str] = []
        cgroup: Cgroup | None = None
        try:
            # tmpfs pages are charged to the cgroup too, so it must hold memory + disk + /dev/shm.
            cg_bytes = (limits.memory_mb + limits.disk_mb + min(SHM_MB, limits.disk_mb) + 32) * 2**20
            cgroup = Cgroup.create(cg_bytes, limits.processes, limits.cpus)
            notes += cgroup.notes
        except CgroupUnavailable as exc:
            notes.append(f"no cgroup ({exc}): processes are limited by RLIMIT_NPROC in the sandbox's own "
                         f"user namespace, memory by RLIMIT_DATA, disk by the tmpfs size; CPU share unlimited")
        info_r, info_w = os.pipe()  # bwrap writes {"child-pid": N} here right after clone()
        block_r, block_w = os.pipe()  # the sandbox waits on this before it runs anything
        open_fds = {info_r, info_w, block_r, block_w}

        def close(fd: int) -> None:
            # Exactly once: with threads, a number closed twice may already belong to another run.
            if fd in open_fds:
                open_fds.discard(fd)
                os.close(fd)

        def started(proc: subprocess.Popen) -> None:
            # Joining a cgroup costs one RCU grace period (~10 ms on this host), so it is started at
            # once on bwrap itself, overlapping bwrap's exec and setup. Whether or not bwrap had
            # joined before it cloned the sandbox, the sandbox's first process (blocked on
            # --block-fd, so nothing has run yet) is then moved too: a no-op when it is already in.
            close(info_w)
            close(block_r)
            if cgroup is not None:
                cgroup.add(proc.pid)
            pid = _read_child_pid(info_r, proc)
            if pid is not None and cgroup is not None:
                cgroup.add(pid)
            os.write(block_w, b"1")

        argv = [*_prlimit_argv(limits), *self._bwrap_args(limits, {}), "--info-fd", str(info_w),
                "--block-fd", str(block_r)]
        try:
            sp = spawn(argv, WORKDIR, env={"PATH": "/usr/bin:/bin"}, user=_host_uid(),
                       kill_extra=cgroup.kill_all if cgroup else (lambda: None),
                       child_fds=(info_w, block_r), started=started)
        except BaseException:
            if cgroup is not None:
                cgroup.kill_all()
                cgroup.remove()
            raise
        finally:
            while open_fds:  # (not a for loop: close() shrinks the set)
                close(next(iter(open_fds)))
        return _Slot(sp, cgroup, notes, _key(limits), time.monotonic())

    def _release(self, slot: _Slot) -> None:
        if slot.cgroup is not None:
            slot.cgroup.kill_all()
            slot.cgroup.remove()
            slot.notes += [n for n in slot.cgroup.notes if n not in slot.notes]

    # --- the warm pool: one started sandbox per limits, so a run skips the ~15-40 ms start-up -------

    def _acquire(self, limits: Limits) -> tuple[_Slot, bool]:
        key = _key(limits)
        with self._lock:
            pending = self._pending.get(key)
        if pending is not None:
            pending.wait(10)  # a sandbox for these limits is starting: cheaper to wait than start two
        with self._lock:
            slot = self._pool.pop(key, None)
        if slot is not None and (not slot.spawned.alive() or time.monotonic() - slot.created > WARM_MAX_AGE_S
                                 or os.getpid() != self._pid):
            self._drop(slot)
            slot = None
        if slot is not None:
            return slot, True
        return self._spawn(limits), False

    def _refill(self, limits: Limits) -> None:
        """Start the next sandbox for these limits in the background (after a run, not during one)."""
        key = _key(limits)
        with self._lock:
            if key in self._pool or key in self._pending or self._closed:
                return
            evict = None
            if len(self._pool) >= MAX_WARM:  # keep the newest few sets of limits warm, not every one
                evict = self._pool.pop(min(self._pool, key=lambda k: self._pool[k].created))
            done = self._pending[key] = threading.Event()
        if evict is not None:
            self._drop(evict)
        _warmer().put((self, limits, key, done))

    def _warm_up(self, limits: Limits, key: tuple, done: threading.Event) -> None:
        slot = None
        try:
            slot = self._spawn(limits)
        except Exception:  # noqa: BLE001 - the next run starts cold and reports the problem itself
            slot = None
        with self._lock:
            self._pending.pop(key, None)
            if slot is not None and key not in self._pool and not self._closed:
                self._pool[key], slot = slot, None
        done.set()
        if slot is not None:
            self._drop(slot)

    def wait_warm(self, timeout: float = 10.0) -> None:
        """Block until background starts are done (benchmarks use it to keep timings apart)."""
        with self._lock:
            events = list(self._pending.values())
        for event in events:
            event.wait(timeout)

    def _drop(self, slot: _Slot) -> None:
        slot.spawned.discard()
        self._release(slot)

    def drain(self) -> None:
        """Stop the waiting sandboxes (a later run starts cold and warms up again)."""
        self.wait_warm()
        with self._lock:
            slots, self._pool = list(self._pool.values()), {}
        for slot in slots:
            self._drop(slot)

    def close(self) -> None:
        """Stop the waiting sandboxes for good (done at exit; --die-with-parent covers a crash)."""
        with self._lock:
            self._closed = True
        self.drain()

    # --- run ------------------------------------------------------------------------------

    def execute(self, command: list[str], inputs: dict[str, bytes], limits: Limits, env: dict[str, str],
                language: str | None) -> ExecResult:
        ok, why = self.available()
        if not ok:
            raise SandboxError(f"The bubblewrap sandbox is not usable: {why}. Nothing was run.")
        if self.toolchain_dir.is_dir():  # (bound only when it exists)
            _check_toolchain_place(self.toolchain_dir)
        input_tar = make_tar(inputs) if inputs else None
        if input_tar is not None and len(input_tar) > limits.disk_mb * 2**20:
            raise SandboxError(f"The input files ({len(input_tar) // 2**20} MiB) exceed the sandbox disk "
                               f"limit ({limits.disk_mb} MiB): raise the limit or send fewer files.")
        start = time.perf_counter()
        slot, warm = self._acquire(limits)
        try:
            out = pump(slot.spawned, command, env=env, limits=limits, input_tar=input_tar,
                       start=start if warm else slot.spawned.started_at)
            cg = slot.cgroup
            oom, pids_hit = bool(cg and cg.oom_killed()), bool(cg and cg.pids_limit_hit())
            peak = cg.peak_memory_bytes() if cg else None
        finally:
            self._release(slot)
        if self.warm:
            self._refill(limits)
        if out.returncode == 1 and not out.tar.buf and bytes(out.stderr.buf).startswith(b"bwrap:"):
            raise SandboxError(f"bubblewrap refused to start: {bytes(out.stderr.buf)[:300].decode(errors='replace')}")
        result = to_result(out, inputs, limits, self.name, slot.notes, oom=oom, pids_hit=pids_hit, peak=peak)
        log_run(result, command, language)
        return result


@dataclass
class _Slot:
    spawned: Spawned
    cgroup: Cgroup | None
    notes: list[str]
    key: tuple
    created: float


def _key(limits: Limits) -> tuple:
    """What is fixed when a sandbox starts (rlimits, tmpfs size, cgroup limits); not the timeout."""
    return (limits.memory_mb, limits.cpu_seconds, limits.processes, limits.disk_mb, limits.open_files, limits.cpus)


_EXECUTORS: weakref.WeakSet[BwrapExecutor] = weakref.WeakSet()
_WARMER: queue.Queue | None = None
_WARMER_LOCK = threading.Lock()


def _warmer() -> queue.Queue:
    """One thread, alive as long as the process, starts warm sandboxes. It must outlive them:
    --die-with-parent is PR_SET_PDEATHSIG, which fires when the *thread* that forked bwrap exits."""
    global _WARMER
    with _WARMER_LOCK:
        if _WARMER is None:
            _WARMER = queue.Queue()

            def loop(jobs: queue.Queue) -> None:
                while True:
                    executor, limits, key, done = jobs.get()
                    executor._warm_up(limits, key, done)

            threading.Thread(target=loop, args=(_WARMER,), name="workbench-sandbox-warmer", daemon=True).start()
        return _WARMER


def drain_all() -> None:
    """Stop every waiting sandbox of every executor in this process."""
    for executor in list(_EXECUTORS):
        executor.drain()


@atexit.register
def _close_all() -> None:
    for executor in list(_EXECUTORS):
        executor.close()
