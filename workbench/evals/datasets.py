"""Datasets in Postgres: a name, immutable versions, each an ordered list of cases.

    result = import_cases(store, "arith", cases, source="arith.jsonl")   # version 1 (created)
    import_cases(store, "arith", cases, source="again.jsonl").created    # False: same content, same version
    get(store, "arith").cases                                            # the newest version's cases

An import is one transaction: every case lands, or none (a malformed row is refused before it starts).
Imports of one name are serialised by an advisory lock, so two at once cannot both take version N+1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from workbench.errors import WorkbenchError
from workbench.evals.cases import Case, DatasetError, check_unique, content_hash

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_LOCK_SALT = "workbench-dataset:"


class DatasetNotFound(WorkbenchError):
    http_status = 404


@dataclass
class Imported:
    name: str
    version: int
    cases: int
    created: bool  # False: this content was already that version
    content_hash: str


@dataclass
class Dataset:
    name: str
    version: int
    source: str
    content_hash: str
    created_at: Any
    cases: list[Case] = field(default_factory=list)
    versions: int = 1

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "versions": self.versions, "cases": len(self.cases),
                "source": self.source, "content_hash": self.content_hash, "created_at": str(self.created_at)}


def check_name(name: str) -> str:
    if not NAME.fullmatch(name or ""):
        raise DatasetError(f"Dataset name {name!r}: use letters, digits, '.', '_' or '-' (at most 100, "
                           f"starting with a letter or digit), e.g. humaneval-20.")
    return name


def import_cases(store, name: str, cases: list[Case], source: str) -> Imported:
    check_name(name)
    check_unique(cases, source)
    digest = content_hash(cases)
    with store.pool.connection() as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_LOCK_SALT + name,))
        row = conn.execute("SELECT version FROM datasets WHERE name = %s AND content_hash = %s",
                           (name, digest)).fetchone()
        if row is not None:
            return Imported(name, row[0], len(cases), False, digest)
        version = conn.execute("SELECT coalesce(max(version), 0) + 1 FROM datasets WHERE name = %s",
                               (name,)).fetchone()[0]
        conn.execute("INSERT INTO datasets (name, version, content_hash, source, cases) VALUES (%s, %s, %s, %s, %s)",
                     (name, version, digest, source, len(cases)))
        with conn.cursor().copy("COPY dataset_cases (dataset, version, position, case_id, input, expected, checker, "
                                "tags) FROM STDIN") as copy:
            for i, case in enumerate(cases):
                copy.write_row((name, version, i, case.id, case.input, case.expected, Jsonb(case.checker),
                                case.tags))
    return Imported(name, version, len(cases), True, digest)


def list_all(store) -> list[dict[str, Any]]:
    """The newest version of each dataset, with how many versions it has."""
    with store.pool.connection() as conn:
        rows = conn.cursor(row_factory=dict_row).execute(
            "SELECT DISTINCT ON (name) name, version, cases, source, content_hash, created_at, "
            "count(*) OVER (PARTITION BY name) AS versions FROM datasets ORDER BY name, version DESC").fetchall()
    return [{**r, "created_at": r["created_at"].isoformat()} for r in rows]


def get(store, name: str, version: int | None = None, limit: int | None = None) -> Dataset:
    """A version of a dataset (default: the newest) with its cases in order (the first `limit`)."""
    with store.pool.connection() as conn:
        cur = conn.cursor(row_factory=dict_row)
        head = cur.execute(
            "SELECT name, version, source, content_hash, created_at, "
            "(SELECT count(*) FROM datasets d2 WHERE d2.name = d.name) AS versions FROM datasets d "
            "WHERE name = %s AND (%s::int IS NULL OR version = %s::int) ORDER BY version DESC LIMIT 1",
            (name, version, version)).fetchone()
        if head is None:
            known = [r[0] for r in conn.execute("SELECT DISTINCT name FROM datasets ORDER BY 1")]
            what = f"version {version} of dataset {name!r}" if version else f"dataset {name!r}"
            raise DatasetNotFound(f"No {what}. Known datasets: {', '.join(known) or 'none'}; import one with "
                                  f"`workbench datasets import FILE --name NAME`.")
        rows = cur.execute(
            "SELECT case_id AS id, input, expected, checker, tags FROM dataset_cases WHERE dataset = %s AND "
            "version = %s ORDER BY position LIMIT %s", (name, head["version"], limit)).fetchall()
    cases = [Case.model_construct(**{**r, "tags": list(r["tags"] or [])}) for r in rows]
    return Dataset(head["name"], head["version"], head["source"], head["content_hash"], head["created_at"], cases,
                   head["versions"])
