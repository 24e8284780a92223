"""The memory's rows in Postgres (pgvector): add with the quality gate, search, the execution cache, feedback.

    memory = MemoryStore(store, embedder)
    memory.add(NewEntry(kind="solution", owner="ana", text=request, body={...}, verified=True))
    hits = memory.search("reverse a string", owner="ana", kinds=("solution",))   # [Hit], best first
    memory.cached("reverse a string", owner="ana", language="python")            # Hit | None, same owner only
    memory.feedback([hit.id], ok=False)                                           # the entry decays

Rules kept here, whoever calls: a solution must be verified (the table refuses one that is not, too); an
entry within NEAR_DUPLICATE cosine similarity of one the same owner already has (same kind, same model) is
merged into it instead of added; only vectors of the embedder's model are compared; entries whose score
(successes + 1) / (successes + failures + 1) fell below `min_score` are not retrieved; a row that does not
read back as an entry is skipped with a logged reason, never handed to a model.
"""

from __future__ import annotations

import logging
import math
import re
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from workbench.errors import WorkbenchError
from workbench.memory.embedder import Embedder, content_hash

log = logging.getLogger(__name__)
KINDS = ("task", "plan", "solution", "failure_note")
SCOPES = ("owner", "shared")
NEAR_DUPLICATE = 0.95
MIN_SIMILARITY = 0.6
MIN_SCORE = 0.4  # one failure without a success halves the score (0.5); a second one (0.33) retires it
MAX_QUERY_CHARS = 8000
_registered: weakref.WeakSet = weakref.WeakSet()


class MemoryInputError(WorkbenchError):
    http_status = 422
    exit_code = 2


class MemoryUnavailable(WorkbenchError):
    http_status = 503


def normalize(request: str) -> str:
    """The request as the cache compares it: whitespace collapsed, case kept (names are case-sensitive)."""
    return " ".join(request.split())


def request_hash(request: str, language: str | None) -> str:
    return content_hash(f"{language or ''}\n{normalize(request)}")


def check_query(query: str) -> str:
    """A search query, or MemoryInputError saying what is wrong with it (empty, or longer than we embed)."""
    if not isinstance(query, str) or not query.strip():
        raise MemoryInputError("The memory query is empty: give the words to search for, e.g. "
                           "`workbench memory search \"reverse a string\"`.")
    if len(query) > MAX_QUERY_CHARS:
        raise MemoryInputError(f"The memory query is {len(query):,} characters; at most {MAX_QUERY_CHARS:,} are "
                           f"searched (the embedding model reads about 256 words): shorten it.")
    return query


@dataclass
class NewEntry:
    kind: str
    owner: str
    text: str
    body: dict[str, Any]
    language: str | None = None
    scope: str = "owner"
    source_task_id: str | None = None
    verified: bool = False

    def check(self) -> None:
        if self.kind not in KINDS:
            raise MemoryInputError(f"Unknown memory kind {self.kind!r}: use one of {', '.join(KINDS)}.")
        if self.scope not in SCOPES:
            raise MemoryInputError(f"Unknown memory scope {self.scope!r}: use one of {', '.join(SCOPES)}.")
        if not isinstance(self.owner, str) or not self.owner.strip():
            raise MemoryInputError("A memory entry needs an owner (who may retrieve it).")
        if not isinstance(self.text, str) or not self.text.strip():
            raise MemoryInputError("A memory entry needs the text it answers (the request).")
        if self.language is not None and not isinstance(self.language, str):
            raise MemoryInputError(f"A memory entry's language is text (python, typescript, java), not {self.language!r}.")
        if not isinstance(self.body, dict):
            raise MemoryInputError(f"A memory entry's body is a JSON object, not {type(self.body).__name__}.")
        if self.kind == "solution" and not self.verified:
            raise MemoryInputError("Only verified solutions are remembered (their tests passed): store this one as a "
                               "failure_note, or verify it first.")


@dataclass
class Hit:
    id: str
    kind: str
    owner: str
    scope: str
    text: str
    body: dict[str, Any]
    language: str | None
    verified: bool
    similarity: float
    score: float
    uses: int = 0
    successes: int = 0
    failures: int = 0
    source_task_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Added:
    id: str
    merged: bool  # folded into an existing near-duplicate (id is that entry's)
    similarity: float | None = None


@dataclass
class Stats:
    entries: int
    by_kind: dict[str, int] = field(default_factory=dict)
    owners: int = 0
    stale_model: int = 0  # entries embedded by another model (re-embedded by `workbench memory reembed`)
    retired: int = 0  # below the score threshold
    uses: int = 0
    successes: int = 0
    failures: int = 0
    model: str | None = None


class MemoryStore:
    """Memory entries on a workbench Store (its pool), embedded by `embedder`."""

    def __init__(self, store: Any, embedder: Embedder, *, min_similarity: float = MIN_SIMILARITY,
                 min_score: float = MIN_SCORE):
        self.store = store
        self.embedder = embedder
        self.min_similarity = min_similarity
        self.min_score = min_score
        with store.connection() as conn:
            exists = conn.execute("SELECT to_regclass('memory_entries') IS NOT NULL").fetchone()[0]
        if not exists:
            raise MemoryUnavailable("Memory is off: this Postgres has no pgvector extension, so the memory table "
                                    "was not created. Use the embedded Postgres (unset WORKBENCH_POSTGRES_URL) or "
                                    "install pgvector on the server, then run `workbench db migrate`.")

    # --- connections -----------------------------------------------------------------------------

    def _conn(self):
        return _Registered(self.store)

    # --- writing ---------------------------------------------------------------------------------

    def add(self, entry: NewEntry, vector: np.ndarray | None = None) -> Added:
        """Store an entry, or merge it into a near-duplicate of the same owner, kind and model."""
        entry.check()
        vec = self.embedder.embed_one(entry.text) if vector is None else vector
        with self._conn() as conn:
            return self._add_on(conn, entry, vec)

    def add_many(self, entries: Sequence[NewEntry]) -> list[Added]:
        """All entries in one transaction (an import: all or nothing), embedded in batches."""
        for entry in entries:
            entry.check()
        vectors = self.embedder.embed([e.text for e in entries]) if entries else []
        with self._conn() as conn:
            return [self._add_on(conn, e, v) for e, v in zip(entries, vectors, strict=True)]

    def _add_on(self, conn, entry: NewEntry, vec: np.ndarray) -> Added:
        conn.execute("SET LOCAL hnsw.iterative_scan = 'relaxed_order'")
        near = conn.execute(
            "SELECT id, 1 - (embedding <=> %s) AS similarity FROM memory_entries "
            "WHERE owner = %s AND kind = %s AND model = %s ORDER BY embedding <=> %s LIMIT 1",
            (vec, entry.owner, entry.kind, self.embedder.model_id, vec)).fetchone()
        if near is not None and _finite(near[1]) and near[1] >= NEAR_DUPLICATE:
            conn.execute("UPDATE memory_entries SET merged = merged + 1, updated_at = now() WHERE id = %s",
                         (near[0],))
            return Added(str(near[0]), merged=True, similarity=float(near[1]))
        row = conn.execute(
            "INSERT INTO memory_entries (kind, owner, scope, text, request_hash, body, language, model, "
            "embedding, source_task_id, verified) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
            "RETURNING id",
            (entry.kind, entry.owner, entry.scope, entry.text, request_hash(entry.text, entry.language),
             Jsonb(entry.body), entry.language, self.embedder.model_id, vec, entry.source_task_id,
             entry.verified)).fetchone()
        return Added(str(row[0]), merged=False)

    def feedback(self, ids: Iterable[str], ok: bool) -> int:
        """What the entries used for a task led to: a success, or a failure (the entries decay)."""
        ids = [str(i) for i in ids]
        if not ids:
            return 0
        column = "successes" if ok else "failures"
        with self._conn() as conn:
            return conn.execute(f"UPDATE memory_entries SET {column} = {column} + 1, updated_at = now() "
                                f"WHERE id = ANY(%s::uuid[])", (ids,)).rowcount

    def _used(self, conn, ids: Sequence[str]) -> None:
        if ids:
            conn.execute("UPDATE memory_entries SET uses = uses + 1, last_used_at = now() WHERE id = ANY(%s::uuid[])",
                         (list(ids),))

    # --- reading ---------------------------------------------------------------------------------

    def search(self, query: str, *, owner: str, kinds: Sequence[str] = KINDS, limit: int = 5,
               min_similarity: float | None = None, count_use: bool = True) -> list[Hit]:
        """Entries this owner may see (theirs, or shared), of the embedder's model, above the similarity and
        score thresholds, most similar first. Failed solutions never come back: only verified solutions
        are solutions."""
        check_query(query)
        vec = self.embedder.embed_one(query)
        floor = self.min_similarity if min_similarity is None else min_similarity
        with self._conn() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute("SET LOCAL hnsw.iterative_scan = 'relaxed_order'")
            rows = cur.execute(
                "SELECT id, kind, owner, scope, text, body, language, verified, uses, successes, failures, score, "
                "source_task_id, 1 - (embedding <=> %s) AS similarity FROM memory_entries "
                "WHERE model = %s AND (owner = %s OR scope = 'shared') AND kind = ANY(%s) AND score >= %s "
                "AND (kind <> 'solution' OR verified) ORDER BY embedding <=> %s LIMIT %s",
                (vec, self.embedder.model_id, owner, list(kinds), self.min_score, vec, limit * 2)).fetchall()
            hits = [h for h in (_hit(r) for r in rows) if h is not None and h.similarity >= floor][:limit]
            if count_use:
                self._used(conn, [h.id for h in hits])
        return hits

    def cached(self, request: str, *, owner: str, language: str | None) -> Hit | None:
        """The stored verified solution of this exact request (whitespace aside) for this owner: never
        another owner's, shared or not; never one that decayed below the score threshold."""
        with self._conn() as conn, conn.cursor(row_factory=dict_row) as cur:
            rows = cur.execute(
                "SELECT id, kind, owner, scope, text, body, language, verified, uses, successes, failures, score, "
                "source_task_id, 1.0 AS similarity FROM memory_entries WHERE owner = %s AND request_hash = %s "
                "AND kind = 'solution' AND verified AND score >= %s ORDER BY score DESC, created_at DESC LIMIT 3",
                (owner, request_hash(request, language), self.min_score)).fetchall()
            hit = next((h for h in (_hit(r) for r in rows) if h is not None and _solution_body(h)), None)
            if hit is not None:
                self._used(conn, [hit.id])
        return hit

    def stats(self) -> Stats:
        with self._conn() as conn:
            by_kind = dict(conn.execute("SELECT kind, count(*) FROM memory_entries GROUP BY kind").fetchall())
            row = conn.execute(
                "SELECT count(*), count(DISTINCT owner), count(*) FILTER (WHERE model <> %s), "
                "count(*) FILTER (WHERE score < %s), coalesce(sum(uses), 0), coalesce(sum(successes), 0), "
                "coalesce(sum(failures), 0) FROM memory_entries", (self.embedder.model_id, self.min_score)).fetchone()
        return Stats(entries=row[0], by_kind=by_kind, owners=row[1], stale_model=row[2], retired=row[3],
                     uses=row[4], successes=row[5], failures=row[6], model=self.embedder.model_id)

    def prune(self) -> int:
        """Delete the retired entries (score below the threshold): they are never retrieved anyway."""
        with self._conn() as conn:
            return conn.execute("DELETE FROM memory_entries WHERE score < %s", (self.min_score,)).rowcount

    def reembed(self, batch: int = 256) -> int:
        """Re-embed the entries another model embedded, so one search never compares two vector spaces."""
        done = 0
        while True:
            with self._conn() as conn:
                rows = conn.execute("SELECT id, text FROM memory_entries WHERE model <> %s LIMIT %s",
                                    (self.embedder.model_id, batch)).fetchall()
                if not rows:
                    return done
                vectors = self.embedder.embed([r[1] for r in rows])
                with conn.cursor() as cur:
                    cur.executemany("UPDATE memory_entries SET embedding = %s, model = %s, updated_at = now() "
                                    "WHERE id = %s", [(v, self.embedder.model_id, r[0]) for r, v in zip(rows, vectors)])
                done += len(rows)

    def rows(self) -> Iterable[dict[str, Any]]:
        """Every entry without its vector, oldest first (the export)."""
        with self._conn() as conn, conn.cursor(row_factory=dict_row) as cur:
            for row in cur.execute(
                    "SELECT id, kind, owner, scope, text, body, language, source_task_id, verified, uses, "
                    "successes, failures, merged, created_at FROM memory_entries ORDER BY created_at, id"):
                yield row


class _Registered:
    """A pooled connection with pgvector's adapter registered (once per connection: the extension exists,
    the memory table needs it); the block is one transaction."""

    def __init__(self, store: Any):
        self._cm = store.connection()

    def __enter__(self):
        conn = self._cm.__enter__()
        if conn not in _registered:
            from pgvector.psycopg import register_vector

            register_vector(conn)
            _registered.add(conn)
        return conn

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def _finite(x: Any) -> bool:
    return x is not None and math.isfinite(float(x))




def _solution_body(hit: Hit) -> bool:
    files = hit.body.get("files")
    return isinstance(files, dict) and bool(files) and all(isinstance(v, str) for v in files.values())


def _hit(row: dict[str, Any]) -> Hit | None:
    """A row as a Hit, or None with the reason logged: a row that cannot be read (a zero or damaged vector,
    a body that is not an object, a solution without files) must never reach a prompt."""
    why = None
    similarity = row.get("similarity")
    if not _finite(similarity):
        why = f"its vector gives no similarity ({similarity!r}: a zero or damaged vector)"
    elif not isinstance(row.get("body"), dict):
        why = f"its body is not a JSON object ({type(row.get('body')).__name__})"
    elif not isinstance(row.get("text"), str) or not row["text"].strip():
        why = "its text is empty"
    elif row.get("kind") not in KINDS:
        why = f"its kind {row.get('kind')!r} is unknown"
    if why is None:
        hit = Hit(id=str(row["id"]), kind=row["kind"], owner=row["owner"], scope=row["scope"], text=row["text"],
                  body=row["body"], language=row.get("language"), verified=bool(row["verified"]),
                  similarity=round(float(similarity), 4), score=float(row["score"]), uses=row["uses"],
                  successes=row["successes"], failures=row["failures"],
                  source_task_id=None if row.get("source_task_id") is None else str(row["source_task_id"]))
        if hit.kind != "solution" or _solution_body(hit):
            return hit
        why = "it is a solution without files"
    log.warning("memory: skipped entry %s: %s", row.get("id"), why)
    return None


_WORD = re.compile(r"\S+")


def tokens_estimate(text: str) -> int:
    """About how many model tokens a text costs (code: ~1.3 tokens a word-like chunk)."""
    return int(len(_WORD.findall(text)) * 1.3) + 1
