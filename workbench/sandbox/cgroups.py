"""A pids + memory (+ cpu) cgroup for one sandbox run, created under the caller's own cgroup.

Why: root ignores RLIMIT_NPROC and RLIMIT_DATA does not count tmpfs pages, so a cgroup is the one
limit that holds a fork bomb and a memory hog whoever runs them. cgroup v1 (one hierarchy per
controller, as on this host) and v2 (one unified hierarchy) are both handled; where neither can be
written (not root, read-only /sys/fs/cgroup) `Cgroup.create` raises CgroupUnavailable with the
reason, and the sandbox records it and falls back to rlimits under an unprivileged uid.

The sandboxed process joins the cgroup itself, before it execs bwrap (the launcher writes its own
pid into every `procs_files` entry), so nothing runs outside it even for a moment.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PREFIX = "workbench-sbx-"
CREATED: set[str] = set()  # names of the groups this process made (tests look for leftovers)


class CgroupUnavailable(Exception):
    """No usable cgroup; str() is the reason recorded in the run's notes."""


def _own_paths() -> dict[str, str]:
    """controller -> this process's cgroup path, from /proc/self/cgroup ('' key = cgroup v2)."""
    paths: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            paths[name] = path
    return paths


@dataclass
class Cgroup:
    dirs: dict[str, Path]  # controller ("pids", "memory", "cpu" or "unified") -> directory
    notes: list[str] = field(default_factory=list)

    @property
    def procs_files(self) -> list[Path]:
        return [d / "cgroup.procs" for d in self.dirs.values()]

    @classmethod
    def create(cls, memory_bytes: int, pids: int, cpus: float | None) -> Cgroup:
        if os.geteuid() != 0:
            raise CgroupUnavailable("not running as root, so no cgroup can be created")
        own = _own_paths()
        name = PREFIX + uuid.uuid4().hex[:12]
        CREATED.add(name)
        v1 = {c: ROOT / c for c in ("pids", "memory", "cpu") if (ROOT / c / "cgroup.procs").exists()}
        if "pids" in v1 and "memory" in v1:
            return cls._create_v1(v1, own, name, memory_bytes, pids, cpus)
        if (ROOT / "cgroup.controllers").exists():
            return cls._create_v2(own.get("", "/"), name, memory_bytes, pids, cpus)
        raise CgroupUnavailable(f"no pids and memory controllers under {ROOT}")

    @classmethod
    def _create_v1(cls, mounts: dict[str, Path], own: dict[str, str], name: str, memory_bytes: int,
                   pids: int, cpus: float | None) -> Cgroup:
        group = cls({})
        try:
            for controller, mount in mounts.items():
                parent = mount / own.get(controller, "/").lstrip("/")
                _sweep(parent)
                path = parent / name
                path.mkdir()
                group.dirs[controller] = path
            group.dirs["pids"].joinpath("pids.max").write_text(str(pids))
            mem = group.dirs["memory"]
            mem.joinpath("memory.limit_in_bytes").write_text(str(memory_bytes))
            # With swap accounting on, also cap memory+swap, or the hog just swaps out.
            if mem.joinpath("memory.memsw.limit_in_bytes").exists():
                try:
                    mem.joinpath("memory.memsw.limit_in_bytes").write_text(str(memory_bytes))
                except OSError:
                    pass
            if "cpu" in group.dirs and cpus:
                period = 100_000
                group.dirs["cpu"].joinpath("cpu.cfs_period_us").write_text(str(period))
                group.dirs["cpu"].joinpath("cpu.cfs_quota_us").write_text(str(int(cpus * period)))
            elif cpus:
                group.notes.append("no cpu cgroup controller: CPU share not limited (CPU time still is)")
        except OSError as exc:
            group.remove()
            raise CgroupUnavailable(f"cannot create a cgroup ({exc.strerror}: {exc.filename})") from None
        return group

    @classmethod
    def _create_v2(cls, own: str, name: str, memory_bytes: int, pids: int, cpus: float | None) -> Cgroup:
        parent = ROOT / own.lstrip("/")
        enabled = (parent / "cgroup.subtree_control").read_text().split() if parent.exists() else []
        missing = {"pids", "memory"} - set(enabled)
        if missing:
            raise CgroupUnavailable(f"cgroup v2 controllers {sorted(missing)} not enabled in {parent}")
        _sweep(parent)
        path = parent / name
        group = cls({})
        try:
            path.mkdir()
            group.dirs["unified"] = path
            (path / "pids.max").write_text(str(pids))
            (path / "memory.max").write_text(str(memory_bytes))
            if (path / "memory.swap.max").exists():
                (path / "memory.swap.max").write_text("0")
            if cpus and "cpu" in enabled:
                (path / "cpu.max").write_text(f"{int(cpus * 100_000)} 100000")
        except OSError as exc:
            group.remove()
            raise CgroupUnavailable(f"cannot create a cgroup ({exc.strerror}: {exc.filename})") from None
        return group

    def add(self, pid: int) -> None:
        """Move process `pid` into every controller's group (before it runs untrusted code)."""
        from workbench.errors import SandboxError

        for procs in self.procs_files:
            try:
                procs.write_text(str(pid))
            except OSError as exc:
                raise SandboxError(f"Could not move the sandbox into its cgroup ({exc.strerror}: {procs}); "
                                   f"nothing was run. Check that /sys/fs/cgroup is writable.") from None

    # --- after the run --------------------------------------------------------------------

    def _read(self, controller: str, filename: str) -> str:
        directory = self.dirs.get(controller) or self.dirs.get("unified")
        try:
            return (directory / filename).read_text() if directory else ""
        except OSError:
            return ""

    def oom_killed(self) -> bool:
        """The kernel killed a process of this run for exceeding the memory limit."""
        text = self._read("memory", "memory.oom_control") or self._read("memory", "memory.events")
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                return True
        return False

    def pids_limit_hit(self) -> bool:
        text = self._read("pids", "pids.events")
        return any(line.startswith("max ") and line.split()[1] != "0" for line in text.splitlines())

    def peak_memory_bytes(self) -> int | None:
        value = self._read("memory", "memory.max_usage_in_bytes") or self._read("memory", "memory.peak")
        return int(value) if value.strip().isdigit() else None

    def pids(self) -> list[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            try:
                found.update(int(p) for p in procs.read_text().split())
            except OSError:
                pass
        return sorted(found)

    def kill_all(self) -> None:
        # Belt and braces: the PID namespace already dies with bwrap; this also covers unsafe-host runs.
        for _ in range(3):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.01)

    def remove(self) -> None:
        """Remove every directory of the group; retries while killed tasks finish exiting."""
        deadline = time.monotonic() + 2.0
        for path in list(self.dirs.values()):
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        self.notes.append(f"cgroup {path} could not be removed yet (removed by a later run)")
                        break
                    self.kill_all()
                    time.sleep(0.02)


def existing_groups() -> list[Path]:
    """Sandbox groups that exist now under this process's own cgroups (for tests and diagnostics)."""
    own = _own_paths()
    parents = [ROOT / c / own.get(c, "/").lstrip("/") for c in ("pids", "memory", "cpu")]
    parents.append(ROOT / own.get("", "/").lstrip("/"))
    found: list[Path] = []
    for parent in parents:
        try:
            found += sorted(parent.glob(PREFIX + "*"))
        except OSError:
            pass
    return found


def _sweep(parent: Path) -> None:
    """Remove empty groups left by a run whose process was killed before it could clean up."""
    try:
        entries = list(parent.glob(PREFIX + "*"))
    except OSError:
        return
    for stale in entries:
        try:
            if not (stale / "cgroup.procs").read_text().strip() and time.time() - stale.stat().st_mtime > 60:
                stale.rmdir()
        except OSError:
            pass
