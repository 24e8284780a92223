"""The sandbox holds: each escape attempt is a test, and the host is checked healthy after each.

Real bubblewrap, real cgroups, real processes. Network tests only ever touch 127.0.0.1.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
from helpers import requires, sandbox_ok

from workbench.errors import SandboxError
from workbench.sandbox import Limits, check_files, files_from_path, get_executor
from workbench.sandbox.bwrap import USED_UIDS, BwrapExecutor, drain_all
from workbench.sandbox.cgroups import CREATED, existing_groups

REPO = Path(__file__).resolve().parent.parent
pytestmark = [requires(*sandbox_ok(toolchain=False)), pytest.mark.timeout(120)]
TOOLCHAIN_PY = Path("/opt/workbench-toolchain/python/bin/python")
PY = str(TOOLCHAIN_PY) if TOOLCHAIN_PY.exists() else "/usr/bin/python3"
FAST = Limits(timeout_s=10, memory_mb=256, disk_mb=32, processes=64)


@pytest.fixture(scope="module")
def ex() -> BwrapExecutor:
    return BwrapExecutor()


def sandbox_processes() -> list[psutil.Process]:
    """Host processes still alive under a uid this test process gave a sandbox (there must be none
    after a run; other processes on the host may run sandboxes of their own). Zombies are dead
    already: the killed sandbox's init is reparented to the host's pid 1, which reaps it later."""
    found = []
    for p in psutil.process_iter(["uids", "cmdline", "status"]):
        uids = p.info.get("uids")
        if uids and uids.real in USED_UIDS and p.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(p)
    return found


def busy_cgroups() -> list[Path]:
    """This process's sandbox cgroups that still hold processes (empty ones are swept later)."""
    busy = []
    for path in existing_groups():
        if path.name not in CREATED:
            continue
        try:
            if (path / "cgroup.procs").read_text().strip():
                busy.append(path)
        except OSError:
            pass
    return busy


@pytest.fixture(autouse=True)
def host_stays_healthy(tmp_path):
    """After every test: nothing of the sandbox is left running, and the host still works."""
    disk_before = psutil.disk_usage("/").free
    yield
    drain_all()  # the one idle, never-used sandbox kept warm for the next run is not a leftover
    deadline = time.monotonic() + 3
    while sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sandbox_processes(), [p.info for p in sandbox_processes()]
    assert not busy_cgroups()
    probe = tmp_path / "probe"
    probe.write_text("ok")  # the host can still write...
    assert subprocess.run(["/bin/true"], timeout=10, check=False).returncode == 0  # ...and fork
    assert disk_before - psutil.disk_usage("/").free < 200 * 2**20  # nothing filled the host disk


def py(ex, code: str, limits: Limits = FAST, **kw):
    return ex.run([PY, "-c", code], limits=limits, **kw)


# --- network ----------------------------------------------------------------------------------


def test_host_loopback_listener_is_unreachable(ex):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        r = py(ex, f"""
import socket
s = socket.socket(); s.settimeout(2)
try:
    s.connect(("127.0.0.1", {port})); print("CONNECTED")
except OSError as e:
    print("refused", type(e).__name__)
""")
        with pytest.raises(socket.timeout):
            server.accept()  # nothing ever arrived on the host side
    finally:
        server.close()
    assert "refused" in r.stdout and "CONNECTED" not in r.stdout, r


def test_name_resolution_fails_and_only_loopback_exists(ex):
    r = py(ex, """
import socket
print("interfaces", [name for _, name in socket.if_nameindex()])
try:
    socket.getaddrinfo("example.com", 443); print("RESOLVED")
except OSError as e:
    print("no dns", type(e).__name__)
""")
    assert "interfaces ['lo']" in r.stdout and "no dns" in r.stdout and "RESOLVED" not in r.stdout, r


# --- host files -------------------------------------------------------------------------------


def test_host_files_are_not_visible(ex, isolated_home, monkeypatch):
    isolated_home.mkdir(parents=True, exist_ok=True)
    (isolated_home / "secret.txt").write_text("top secret")
    targets = ["/etc/passwd", "/etc/shadow", "/etc/hostname", "/root", str(Path.home()), str(REPO / "README.md"),
               str(isolated_home / "secret.txt"), "/proc/1/root/etc/passwd", "/sys/kernel", "/run", "/var", "/home"]
    r = py(ex, f"""
import os
for t in {targets!r}:
    try:
        (os.listdir(t) if os.path.isdir(t) else open(t).read()); print("OPENED", t)
    except OSError as e:
        print("denied", t, type(e).__name__)
print("root:", sorted(os.listdir("/")))
""")
    assert "OPENED" not in r.stdout, r.stdout
    assert r.stdout.count("denied") == len(targets)
    root = eval(r.stdout.split("root:")[1])
    assert set(root) <= {"usr", "bin", "lib", "lib64", "sbin", "etc", "opt", "proc", "dev", "tmp", "work"}
    assert "passwd" not in r.stdout.split("root:")[0].replace("/etc/passwd", "")


def test_symlinks_and_dotdot_do_not_reach_the_host(ex, tmp_path):
    secret = tmp_path / "host-secret.txt"
    secret.write_text("s3cr3t")
    r = py(ex, f"""
import os
os.symlink("/etc/passwd", "link1"); os.symlink({str(secret)!r}, "link2"); os.symlink("/", "rootlink")
for p in ["link1", "link2", "../../../etc/passwd", "../" * 10 + "{str(secret)[1:]}", "rootlink/etc/shadow",
          "/work/../../etc/passwd"]:
    try:
        print("OPENED", p, open(p).read()[:20])
    except OSError as e:
        print("denied", p, type(e).__name__)
""")
    assert "OPENED" not in r.stdout and "s3cr3t" not in r.stdout and r.stdout.count("denied") == 6, r


def test_symlinks_in_an_input_directory_are_not_followed(tmp_path):
    (tmp_path / "main.py").write_text("print(1)")
    (tmp_path / "leak.txt").symlink_to("/etc/passwd")
    assert set(files_from_path(tmp_path)) == {"main.py"}
    for bad in ("../x.py", "/etc/x", "a/../../x", ""):
        with pytest.raises(SandboxError):
            check_files({bad: "x"})


def test_writes_outside_the_work_dir_fail(ex, tmp_path):
    target = tmp_path / "pwned"
    toolchain = Path("/opt/workbench-toolchain")
    r = py(ex, f"""
import os
for p in ["/usr/pwned", "/etc/pwned", "/pwned", "/opt/pwned", "{toolchain}/pwned", {str(target)!r},
          "/dev/pwned", "/proc/pwned"]:
    try:
        open(p, "w").write("x"); print("WROTE", p)
    except OSError as e:
        print("denied", p, type(e).__name__)
open("/work/ok.txt", "w").write("inside is fine")
open("/tmp/scratch.txt", "w").write("so is /tmp")
""")
    assert "WROTE" not in r.stdout and r.stdout.count("denied") == 8, r
    assert not target.exists() and not (toolchain / "pwned").exists() and not Path("/usr/pwned").exists()
    assert r.files == {"ok.txt": b"inside is fine"}  # /tmp is scratch, not a result


def test_each_run_gets_a_fresh_work_dir(ex):
    assert py(ex, "open('left.txt', 'w').write('x')").files == {"left.txt": b"x"}
    r = py(ex, "import os; print(sorted(os.listdir('.')))")
    assert r.stdout.strip() == "['.tmp']", r


# --- secrets ----------------------------------------------------------------------------------


def test_environment_secrets_do_not_leak(ex, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-should-never-leak-1234")
    monkeypatch.setenv("WORKBENCH_API_KEY", "wb-should-never-leak")
    r = py(ex, """
import os
print(dict(os.environ))
for pid in ("self", "1"):
    try:
        print(open(f"/proc/{pid}/environ", "rb").read())
    except OSError as e:
        print("no environ", pid, type(e).__name__)
""")
    assert r.ok, r
    assert "never-leak" not in r.stdout and "OPENAI_API_KEY" not in r.stdout and "WORKBENCH" not in r.stdout


# --- resources --------------------------------------------------------------------------------


def test_fork_bomb_is_contained(ex):
    start = time.monotonic()
    r = ex.run(["/bin/sh", "-c", "b(){ b | b & }; b; sleep 2"], limits=Limits(timeout_s=8, processes=64))
    assert time.monotonic() - start < 12
    # RLIMIT_NPROC (own uid) or the pids cgroup refuses the forks, so the run ends by itself after the
    # sleep: a bomb the wall clock had to stop was not contained.
    assert not r.timed_out, r
    assert "Cannot fork" in r.stderr or any("process limit" in n for n in r.notes), r
    # Refused by the process cap, not by running out of memory (the memory cgroup refuses forks too).
    assert r.peak_memory_mb is None or r.peak_memory_mb < 128, r


def test_fork_bomb_is_contained_without_cgroups(ex, monkeypatch):
    from workbench.sandbox import cgroups

    def unavailable(*a, **k):
        raise cgroups.CgroupUnavailable("disabled by the test")

    monkeypatch.setattr(cgroups.Cgroup, "create", classmethod(lambda cls, *a, **k: unavailable()))
    r = py(ex, """
import os, time
n = 0
try:
    for _ in range(1000):
        if os.fork() == 0:
            time.sleep(5); os._exit(0)
        n += 1
except OSError as e:
    print("fork refused after", n, type(e).__name__)
""", limits=Limits(timeout_s=8, processes=40))
    assert "fork refused after" in r.stdout and int(r.stdout.split("after")[1].split()[0]) < 40, r
    assert any("no cgroup" in n and "disabled by the test" in n for n in r.notes)


def test_memory_hog_is_stopped(ex):
    r = py(ex, "b = bytearray(2 * 1024**3); print('ALLOCATED')", limits=Limits(timeout_s=10, memory_mb=128))
    assert "ALLOCATED" not in r.stdout and not r.ok
    assert "MemoryError" in r.stderr or (r.killed_reason and "memory" in r.killed_reason), r


def test_memory_hog_across_processes_hits_the_cgroup(ex):
    # Each process stays under its RLIMIT_DATA; together they exceed the cgroup's limit.
    r = py(ex, """
import os, time
kids = []
for _ in range(6):
    pid = os.fork()
    if pid == 0:
        blocks = [bytearray(80 * 2**20) for _ in range(1)]
        for b in blocks:
            b[::4096] = b"x" * len(b[::4096])
        time.sleep(3); os._exit(0)
    kids.append(pid)
print([os.waitpid(k, 0)[1] for k in kids])
""", limits=Limits(timeout_s=10, memory_mb=100, disk_mb=16))
    statuses = eval(r.stdout) if r.stdout.startswith("[") else []
    # The kernel's OOM killer (SIGKILL) in the sandbox's cgroup, not any failure of any child.
    assert r.killed_reason is not None and "memory limit" in r.killed_reason, r
    assert any(os.WIFSIGNALED(s) and os.WTERMSIG(s) == 9 for s in statuses), r


def test_infinite_loop_hits_the_wall_clock(ex):
    start = time.monotonic()
    r = py(ex, "while True: pass", limits=Limits(timeout_s=1.5))
    assert r.timed_out and "timeout" in r.killed_reason and r.exit_code == -9
    assert time.monotonic() - start < 5


def test_cpu_time_limit(ex):
    r = py(ex, "while True: pass", limits=Limits(timeout_s=10, cpu_s=1, cpus=None))
    assert not r.timed_out and r.killed_reason and "CPU time" in r.killed_reason, r


def test_disk_filler_is_capped(ex):
    r = py(ex, """
import os
for target in ("/work/fill", "/tmp/fill2", "/dev/shm/fill3"):
    written = 0
    try:
        with open(target, "wb") as f:
            while True:
                f.write(b"x" * 2**20); f.flush(); written += 1
    except OSError as e:
        print(target, "stopped", type(e).__name__, written)
""", limits=Limits(timeout_s=15, disk_mb=16))
    assert r.stdout.count("stopped") == 3 or r.killed_reason, r
    # /work and /tmp share the 16 MiB; /dev/shm has its own small cap: far below the host's disk.
    assert sum(int(line.split()[-1]) for line in r.stdout.splitlines() if "stopped" in line) <= 3 * 16 + 3


def test_stdout_flood_is_capped_and_parent_memory_stays_bounded(ex):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = py(ex, "import sys\nchunk = b'x' * 2**20\nfor _ in range(1024): sys.stdout.buffer.write(chunk)",
           limits=Limits(timeout_s=30))
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert r.stdout_truncated and len(r.stdout) < 1_100_000
    assert "[workbench: stdout truncated" in r.stdout
    assert r.killed_reason and "output flood" in r.killed_reason
    assert grew_mb < 64, grew_mb


def test_a_full_gigabyte_drains_through_bounded_buffers(ex):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = py(ex, "import sys\nchunk = b'y' * 2**20\nfor _ in range(1024): sys.stdout.buffer.write(chunk)",
           limits=Limits(timeout_s=60, flood_bytes=2 * 2**30))
    grew_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert r.ok and r.stdout_bytes == 2**30 and r.stdout_truncated
    assert r.stdout.endswith(f"1,000,000 of {2**30:,} bytes shown]\n")
    assert grew_mb < 64, grew_mb


def test_binary_garbage_output_is_reported_not_raised(ex):
    r = py(ex, "import os, sys; sys.stdout.buffer.write(bytes(range(256)) * 4 + os.urandom(4096)); "
               "sys.stderr.buffer.write(b'\\xff\\xfe\\x00bad')")
    assert r.ok and "\ufffd" in r.stdout and r.stdout_bytes == 1024 + 4096 and "bad" in r.stderr


# --- processes that try to outlive or take down the run -----------------------------------------


def test_daemon_does_not_outlive_the_run(ex):
    marker = "987.654"
    start = time.monotonic()
    r = py(ex, f"""
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 10)
        os.execv("/usr/bin/sleep", ["sleep", "{marker}"])
    os._exit(0)
print("parent done")
""")
    assert r.ok and "parent done" in r.stdout
    assert time.monotonic() - start < 8  # the run did not wait for the daemon
    time.sleep(0.2)
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", marker]]
    assert not leftovers


def test_killing_its_parent_ends_the_run_cleanly(ex):
    r = py(ex, "import os, time; os.kill(os.getppid(), 9); time.sleep(30)")
    assert not r.ok and r.exit_code == 137
    assert "supervising shell was killed" in r.killed_reason and any("killed before" in n for n in r.notes)


def test_pid_1_and_host_processes_cannot_be_killed(ex):
    me = os.getpid()
    r = py(ex, f"""
import os, signal
print("pids", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
for pid in (1, {me}):
    try:
        os.kill(pid, signal.SIGKILL); print("sent", pid)
    except OSError as e:
        print("refused", pid, type(e).__name__)
print("still here")
os.kill(-1, signal.SIGKILL)  # everything it may signal: only the sandbox's own shell
""")
    # Its own pid namespace: a few small pids, none of the host's.
    pids = eval(r.stdout.split("pids", 1)[1].splitlines()[0]) if r.stdout.startswith("pids") else None
    assert pids and me not in pids and max(pids) < 20, r
    # The host's pid does not exist in there; the sandbox's init survives SIGKILL, so the program goes on.
    assert f"refused {me} ProcessLookupError" in r.stdout and "sent 1" in r.stdout and "still here" in r.stdout, r
    # kill(-1) reached only the sandbox's supervising shell, which ends the run (the host is checked after).
    assert "supervising shell was killed" in (r.killed_reason or ""), r


def test_parallel_runs_are_independent(ex):
    results = {}

    def go(i):
        results[i] = py(ex, f"open('f{i}', 'w').write('{i}'); print({i})")

    threads = [threading.Thread(target=go, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, r in results.items():
        assert r.ok and r.stdout.strip() == str(i) and r.files == {f"f{i}": str(i).encode()}


def test_returned_files_are_capped(ex):
    r = py(ex, "for i in range(12): open(f'big{i}', 'wb').write(b'z' * 2**20)",
           limits=Limits(timeout_s=20, disk_mb=32, files_bytes=4 * 2**20))
    assert r.ok and r.files_truncated and sum(map(len, r.files.values())) <= 4 * 2**20


def test_the_sandbox_process_runs_unprivileged(ex):
    r = py(ex, "import os; print(os.getuid(), open('/proc/self/status').read().split('CapEff:')[1].split()[0])")
    uid, caps = r.stdout.split()
    assert uid == "1000" and int(caps, 16) == 0, r


# --- fail closed ------------------------------------------------------------------------------


def test_no_isolation_means_no_run(monkeypatch):
    from workbench.sandbox.bwrap import BwrapExecutor as B
    from workbench.sandbox.docker import DockerExecutor as D

    monkeypatch.setattr(B, "available", classmethod(lambda cls: (False, "bwrap missing (test)")))
    monkeypatch.setattr(D, "available", classmethod(lambda cls: (False, "no engine (test)")))
    with pytest.raises(SandboxError) as err:
        get_executor()
    assert "not run" in str(err.value) and "unsafe-host" in str(err.value) and "bubblewrap" in str(err.value)
    with pytest.raises(SandboxError, match="Unknown sandbox backend"):
        get_executor("chroot")


def test_unsafe_host_needs_its_name_and_says_so(monkeypatch):
    from workbench.config import reload_settings

    monkeypatch.setenv("WORKBENCH_SANDBOX", "unsafe-host")
    reload_settings()
    executor = get_executor()
    assert executor.name == "unsafe-host" and not executor.isolated
    r = executor.run([sys.executable, "-c", "print(6 * 7)"], limits=Limits(timeout_s=10))
    assert r.stdout.strip() == "42" and any("UNSAFE" in n for n in r.notes)


def test_cold_and_warm_sandboxes_hold_alike(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-should-never-leak-5678")
    probe = """
import os, socket
print(sorted(os.listdir("/")), [n for _, n in socket.if_nameindex()], os.getuid())
print("OPENAI_API_KEY" in os.environ, os.path.exists("/etc/passwd"))
open("mine", "w").write("x")
"""
    outputs = []
    for executor in (BwrapExecutor(warm=False), BwrapExecutor(warm=True)):
        for _ in range(2):  # warm: the second run takes the sandbox started after the first
            r = py(executor, probe)
            assert r.ok and r.files == {"mine": b"x"}, r
            outputs.append(r.stdout)
            executor.wait_warm()
        assert bool(executor._pool) == executor.warm
        executor.close()
    assert len(set(outputs)) == 1 and "False False" in outputs[0] and "['lo'] 1000" in outputs[0]


def test_bad_commands_are_refused_before_anything_runs(ex):
    for command, env in (([], None), (["echo", "a\0b"], None), (["true"], {"1BAD": "x"}), (["true"], {"A-B": "x"}),
                         (["true"], {"OK": "a\0"})):
        with pytest.raises(SandboxError):
            ex.run(command, env=env)
    quoted = ex.run(["printf", "%s|", "it's", "$HOME", "`id`", "a\nb", ""], env={"X_1": "v'\"$"})
    assert quoted.stdout == "it's|$HOME|`id`|a\nb||", quoted  # arguments arrive exactly, never re-parsed
