"""The Postgres schema as an ordered list of named migration functions (like simonw/llm's migrations.py).

Each function receives a psycopg connection inside a transaction and is recorded by name in
`_workbench_migrations` once applied. Never edit or reorder an applied migration: append a new one.

Two invariants the rest of the store relies on are set up here:

* events.seq follows commit order. A BEFORE INSERT ... FOR EACH STATEMENT trigger takes a transaction-level
  advisory lock, so inserting transactions are serialised: a transaction that draws sequence numbers
  commits before the next one draws any. Without it a transaction holding seq 100 could commit after one
  holding seq 101, and the DuckDB sync (which copies `seq > watermark`) would skip row 100 forever.
  Consequence: keep transactions that insert events short (the writer commits one batch per transaction).
* Live updates: an AFTER INSERT ... FOR EACH STATEMENT trigger sends one NOTIFY per task in the statement on
  channel `workbench_events` with {"task_id", "max_seq", "n"} — LISTEN there, then read `seq > last_seen`.
"""

from __future__ import annotations

from collections.abc import Callable

import psycopg

MIGRATIONS: list[Callable[[psycopg.Connection], None]] = []
TASK_STATUSES = ("pending", "queued", "processing", "awaiting_approval", "completed", "failed", "cancelled")
EVENTS_CHANNEL = "workbench_events"
# Arbitrary constant key of the advisory lock that orders event inserts ("wbev" in ASCII).
EVENTS_LOCK_KEY = 0x77626576
# Serialises concurrent `migrate()` calls from several processes (attaching workers, CLI, server).
MIGRATIONS_LOCK_KEY = 0x77626D67


def migration(fn: Callable[[psycopg.Connection], None]) -> Callable[[psycopg.Connection], None]:
    MIGRATIONS.append(fn)
    return fn


@migration
def m001_meta(conn: psycopg.Connection) -> None:
    # instance_id identifies this database: the DuckDB copy remembers it and rebuilds itself when it is
    # pointed at another database (e.g. after switching WORKBENCH_POSTGRES_URL).
    conn.execute(
        """
        CREATE TABLE _workbench_meta (
            key text PRIMARY KEY,
            value text NOT NULL
        );
        INSERT INTO _workbench_meta (key, value) VALUES ('instance_id', gen_random_uuid()::text);
        """
    )


@migration
def m002_tasks(conn: psycopg.Connection) -> None:
    statuses = ", ".join(f"'{s}'" for s in TASK_STATUSES)
    conn.execute(
        f"""
        CREATE TABLE tasks (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            title text NOT NULL DEFAULT '',
            prompt text NOT NULL,
            kind text,
            language text,
            complexity smallint CHECK (complexity BETWEEN 1 AND 5),
            summary text,
            status text NOT NULL DEFAULT 'pending' CHECK (status IN ({statuses})),
            priority integer NOT NULL DEFAULT 0,
            model text,
            budget_usd double precision CHECK (budget_usd IS NULL OR budget_usd >= 0),
            parent_id uuid REFERENCES tasks (id) ON DELETE SET NULL,
            result jsonb,
            error text,
            attempts integer NOT NULL DEFAULT 0,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            finished_at timestamptz,
            updated_at timestamptz NOT NULL DEFAULT now(),
            -- Transaction that last wrote the row: the DuckDB sync copies changed tasks by it (see sync.py).
            row_xid xid8 NOT NULL DEFAULT pg_current_xact_id()
        );
        CREATE INDEX tasks_status_priority ON tasks (status, priority DESC, created_at);
        CREATE INDEX tasks_parent ON tasks (parent_id) WHERE parent_id IS NOT NULL;
        CREATE INDEX tasks_row_xid ON tasks (row_xid);

        CREATE FUNCTION _workbench_tasks_touch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.updated_at := now();
            NEW.row_xid := pg_current_xact_id();
            RETURN NEW;
        END $$;
        CREATE TRIGGER tasks_touch BEFORE UPDATE ON tasks
            FOR EACH ROW EXECUTE FUNCTION _workbench_tasks_touch();
        """
    )


@migration
def m003_events(conn: psycopg.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE events (
            seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id uuid NOT NULL UNIQUE,           -- idempotency key: a retried batch never duplicates
            ts timestamptz NOT NULL DEFAULT now(),
            task_id uuid,                            -- no foreign key: calls outside tasks are logged too
            trace_id text,
            span_id text,
            parent_span_id text,
            kind text NOT NULL CHECK (kind <> ''),
            agent text,
            model text,
            tokens_in integer CHECK (tokens_in >= 0),
            tokens_out integer CHECK (tokens_out >= 0),
            cost_usd double precision,
            duration_ms double precision,
            error text,
            payload jsonb NOT NULL DEFAULT '{}'::jsonb
        );
        CREATE INDEX events_task_seq ON events (task_id, seq) WHERE task_id IS NOT NULL;
        CREATE INDEX events_trace ON events (trace_id) WHERE trace_id IS NOT NULL;
        CREATE INDEX events_ts ON events (ts);
        """
    )


@migration
def m004_events_order_and_notify(conn: psycopg.Connection) -> None:
    conn.execute(
        f"""
        CREATE FUNCTION _workbench_events_order() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            -- Held until commit: sequence numbers are drawn after the previous inserter committed.
            PERFORM pg_advisory_xact_lock({EVENTS_LOCK_KEY});
            RETURN NULL;
        END $$;
        CREATE TRIGGER events_order BEFORE INSERT ON events
            FOR EACH STATEMENT EXECUTE FUNCTION _workbench_events_order();

        CREATE FUNCTION _workbench_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{EVENTS_CHANNEL}',
                              json_build_object('task_id', task_id, 'max_seq', max(seq), 'n', count(*))::text)
            FROM new_rows GROUP BY task_id;
            RETURN NULL;
        END $$;
        CREATE TRIGGER events_notify AFTER INSERT ON events
            REFERENCING NEW TABLE AS new_rows
            FOR EACH STATEMENT EXECUTE FUNCTION _workbench_events_notify();

        -- Append-only: refuse UPDATE and DELETE (TRUNCATE stays possible for an administrator).
        CREATE FUNCTION _workbench_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'events is append-only: % is not allowed', TG_OP
                USING HINT = 'log a new event (e.g. kind=status) instead of changing an old one';
        END $$;
        CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
            FOR EACH STATEMENT EXECUTE FUNCTION _workbench_events_append_only();
        """
    )


def names() -> list[str]:
    return [fn.__name__ for fn in MIGRATIONS]


def ensure_table(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _workbench_migrations ("
        " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )


def applied(conn: psycopg.Connection) -> list[str]:
    """Names recorded in the database, in the order they were applied ([] on a fresh database)."""
    exists = conn.execute("SELECT to_regclass('_workbench_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return []
    return [r[0] for r in conn.execute("SELECT name FROM _workbench_migrations ORDER BY applied_at, name")]


def status(conn: psycopg.Connection) -> dict[str, list[str]]:
    """{"applied": [...], "pending": [...], "unknown": [...]} — unknown: applied by a newer workbench."""
    done = applied(conn)
    known = names()
    return {
        "applied": [n for n in known if n in done],
        "pending": [n for n in known if n not in done],
        "unknown": [n for n in done if n not in known],
    }


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply pending migrations in one transaction; returns the names applied now ([] when up to date).

    An advisory lock makes concurrent callers (several processes opening the store at once) wait for each
    other; the second one then finds nothing pending.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATIONS_LOCK_KEY,))
        ensure_table(conn)
        done = set(applied(conn))
        ran: list[str] = []
        for fn in MIGRATIONS:
            if fn.__name__ in done:
                continue
            fn(conn)
            conn.execute("INSERT INTO _workbench_migrations (name) VALUES (%s)", (fn.__name__,))
            ran.append(fn.__name__)
        return ran


@migration
def m005_anomaly_scores(conn: psycopg.Connection) -> None:
    # Written by workbench.analysis.anomaly: one row per training, one score per scored row (calls or tasks).
    # Not append-only like events: older trainings are deleted (with their scores) when a new one lands.
    conn.execute(
        """
        CREATE TABLE anomaly_models (
            id uuid PRIMARY KEY,
            level text NOT NULL CHECK (level IN ('call', 'task')),
            trained_at timestamptz NOT NULL DEFAULT now(),
            rows integer NOT NULL,
            flagged integer NOT NULL,
            features jsonb NOT NULL,            -- feature names and typical values (for explanations)
            params jsonb NOT NULL,              -- contamination, threshold, retrain rules
            trained_until_seq bigint NOT NULL,  -- newest event seq in the training data
            tasks_seen integer NOT NULL DEFAULT 0,
            duration_ms double precision NOT NULL,
            trigger text NOT NULL               -- manual | new_rows | timer | first | demo
        );
        CREATE INDEX anomaly_models_level ON anomaly_models (level, trained_at DESC);
        CREATE TABLE anomaly_scores (
            model_id uuid NOT NULL REFERENCES anomaly_models (id) ON DELETE CASCADE,
            row_key text NOT NULL,              -- event_id of the call, or the task id
            task_id uuid,
            seq bigint,
            ts timestamptz,
            score double precision NOT NULL,    -- higher = more unusual
            flagged boolean NOT NULL,
            features jsonb NOT NULL,
            reasons jsonb NOT NULL,             -- features far from typical: {feature, value, typical, z}
            PRIMARY KEY (model_id, row_key)
        );
        CREATE INDEX anomaly_scores_flagged ON anomaly_scores (model_id, score DESC) WHERE flagged;
        """
    )


@migration
def m006_task_plans_and_checkpoints(conn: psycopg.Connection) -> None:
    # How a task runs (mode), its plan (for approval and resume) and one row per finished subtask, so a
    # task restarted after a crash resumes from its finished subtasks instead of starting over.
    conn.execute(
        """
        CREATE TABLE task_runs (
            task_id uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
            mode text NOT NULL DEFAULT 'agents' CHECK (mode IN ('agents', 'single')),
            approve_plan boolean NOT NULL DEFAULT false,
            plan jsonb,                          -- the Director's plan (workbench.agents.director.Plan)
            plan_version integer NOT NULL DEFAULT 0,  -- bumped when a plan is stored or edited
            plan_state text NOT NULL DEFAULT 'none' CHECK (plan_state IN ('none', 'proposed', 'approved')),
            approved_by text,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE task_subtasks (
            task_id uuid NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
            plan_version integer NOT NULL,
            subtask_id text NOT NULL,
            specialist text NOT NULL,
            status text NOT NULL CHECK (status IN ('done', 'failed', 'skipped')),
            result jsonb NOT NULL,               -- workbench.agents.specialist.SubtaskResult
            worker text,
            finished_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (task_id, plan_version, subtask_id)
        );
        """
    )


@migration
def m007_pipeline_runs(conn: psycopg.Connection) -> None:
    # workbench.pipelines: one row per notebook run, and one per schedule. The schedule row is the claim:
    # a server fires a due time only if its UPDATE moves last_due forward, so two servers never both run it.
    conn.execute(
        """
        CREATE TABLE pipeline_runs (
            id uuid PRIMARY KEY,
            pipeline text NOT NULL,
            trigger text NOT NULL CHECK (trigger IN ('manual', 'schedule', 'catch_up')),
            scheduled_for timestamptz,          -- the due time a scheduled run fires for
            status text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
            parameters jsonb NOT NULL,
            started_at timestamptz NOT NULL,
            finished_at timestamptz,
            duration_ms double precision,
            failed_cell integer,                -- index in the source notebook of the cell that raised
            error text,
            workdir text NOT NULL,
            output_notebook text,
            output_html text
        );
        CREATE INDEX pipeline_runs_recent ON pipeline_runs (pipeline, started_at DESC);
        CREATE UNIQUE INDEX pipeline_runs_due ON pipeline_runs (pipeline, scheduled_for)
            WHERE scheduled_for IS NOT NULL;
        CREATE TABLE pipeline_schedules (
            pipeline text PRIMARY KEY,
            cron text NOT NULL,
            since timestamptz NOT NULL,         -- first seen: due times before it are never run
            last_due timestamptz                -- the latest due time claimed (run or skipped)
        );
        """
    )


@migration
def m008_datasets_experiments(conn: psycopg.Connection) -> None:
    # workbench.evals: a dataset version is immutable; importing the same content again finds the version
    # by its hash instead of adding one. An experiment is one configuration run over one dataset version;
    # its result row per case is the claim that makes a resumed run do each case exactly once: `attempt`
    # names the run that may finish the row, so a task left over from a crashed run cannot overwrite it.
    conn.execute(
        """
        CREATE TABLE datasets (
            name text NOT NULL,
            version integer NOT NULL,
            content_hash text NOT NULL,
            source text NOT NULL,
            cases integer NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (name, version),
            UNIQUE (name, content_hash)
        );
        CREATE TABLE dataset_cases (
            dataset text NOT NULL,
            version integer NOT NULL,
            position integer NOT NULL,
            case_id text NOT NULL,
            input text NOT NULL,
            expected text,
            checker jsonb NOT NULL,
            tags text[] NOT NULL DEFAULT '{}',
            PRIMARY KEY (dataset, version, case_id),
            UNIQUE (dataset, version, position),
            FOREIGN KEY (dataset, version) REFERENCES datasets (name, version) ON DELETE CASCADE
        );
        CREATE TABLE experiments (
            id uuid PRIMARY KEY,
            name text NOT NULL UNIQUE,
            dataset text NOT NULL,
            dataset_version integer NOT NULL,
            config_name text NOT NULL,
            config jsonb NOT NULL,
            config_hash text NOT NULL,
            case_limit integer,
            cases integer NOT NULL,
            status text NOT NULL CHECK (status IN ('running', 'completed')),
            created_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            FOREIGN KEY (dataset, dataset_version) REFERENCES datasets (name, version)
        );
        CREATE INDEX experiments_resume ON experiments (dataset, dataset_version, config_hash) WHERE status = 'running';
        CREATE TABLE experiment_results (
            experiment_id uuid NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
            case_id text NOT NULL,
            status text NOT NULL CHECK (status IN ('running', 'done')),
            attempt uuid NOT NULL,
            task_id uuid,
            passed boolean,
            score double precision,
            tokens_in integer,
            tokens_out integer,
            cost_usd double precision,
            duration_ms double precision,
            error text,
            output text,
            detail jsonb,
            started_at timestamptz NOT NULL DEFAULT now(),
            finished_at timestamptz,
            PRIMARY KEY (experiment_id, case_id)
        );
        """
    )


@migration
def m009_memory(conn: psycopg.Connection) -> None:
    # workbench.memory: what past tasks taught, one row per entry with its sentence embedding. Only verified
    # solutions are stored as solutions (the code loop's tests passed); a failure is a failure_note. The
    # counters say what an entry later led to: score (a Laplace-smoothed success rate) decays with each
    # failure, and an entry below the memory's threshold is no longer retrieved. A Postgres without
    # pgvector gets no table: the store works, memory says it is off and how to fix it.
    available = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    if available is None:
        return
    conn.execute(
        """
        CREATE EXTENSION IF NOT EXISTS vector;
        CREATE TABLE memory_entries (
            id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            kind text NOT NULL CHECK (kind IN ('task', 'plan', 'solution', 'failure_note')),
            owner text NOT NULL CHECK (owner <> ''),
            scope text NOT NULL DEFAULT 'owner' CHECK (scope IN ('owner', 'shared')),
            text text NOT NULL,                 -- what is embedded: the request the entry answers
            request_hash text NOT NULL,         -- sha256 of the normalised request (+ language): the exact-match cache
            body jsonb NOT NULL,                -- kind-specific: files + language (solution), plan, note
            language text,
            model text NOT NULL,                -- embedding model and version: only vectors of one model are compared
            embedding vector(384) NOT NULL,
            source_task_id uuid,
            verified boolean NOT NULL DEFAULT false,
            CHECK (kind <> 'solution' OR verified),
            uses integer NOT NULL DEFAULT 0,
            successes integer NOT NULL DEFAULT 0,
            failures integer NOT NULL DEFAULT 0,
            merged integer NOT NULL DEFAULT 0,  -- near-duplicates folded into this entry
            score double precision GENERATED ALWAYS AS ((successes + 1)::float8 / (successes + failures + 1)) STORED,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            last_used_at timestamptz
        );
        CREATE INDEX memory_entries_embedding ON memory_entries USING hnsw (embedding vector_cosine_ops);
        CREATE INDEX memory_entries_request ON memory_entries (owner, request_hash, kind);
        CREATE INDEX memory_entries_owner ON memory_entries (owner, kind);
        """
    )


@migration
def m010_api_keys(conn: psycopg.Connection) -> None:
    # workbench.store.api_keys: named API keys with a scope. Only an HMAC-SHA256 of the secret (and of the
    # browser-session token derived from it) is kept, each with its own random salt; the secret is shown
    # once at creation. task_owners records which key submitted a task (a submit key cancels only its own).
    conn.execute(
        """
        CREATE TABLE api_keys (
            name text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$'),
            key_id text NOT NULL UNIQUE,        -- public part of the key (wbk_<key_id>_<secret>): finds the row
            scope text NOT NULL CHECK (scope IN ('read', 'submit', 'admin')),
            salt bytea NOT NULL,
            secret_hash bytea NOT NULL,          -- HMAC-SHA256(salt, secret)
            session_hash bytea NOT NULL,         -- HMAC-SHA256(salt, the login cookie's token)
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        );
        CREATE TABLE task_owners (
            task_id uuid PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
            key_name text NOT NULL
        );
        """
    )


@migration
def m011_task_memory_and_memory_sync(conn: psycopg.Connection) -> None:
    # Per task: whether it uses memory (NULL: WORKBENCH_MEMORY decides) and whose memory it reads and writes
    # (fixed when the task is created, so a retried or resumed run never changes owner). Memory rows get the
    # same last-writer transaction id as tasks, so the DuckDB sync copies changed entries exactly once.
    conn.execute(
        """
        ALTER TABLE task_runs ADD COLUMN memory boolean;
        ALTER TABLE task_runs ADD COLUMN memory_owner text CHECK (memory_owner <> '');
        """
    )
    exists = conn.execute("SELECT to_regclass('memory_entries') IS NOT NULL").fetchone()[0]
    if not exists:
        return
    conn.execute(
        """
        ALTER TABLE memory_entries ADD COLUMN row_xid xid8 NOT NULL DEFAULT pg_current_xact_id();
        CREATE INDEX memory_entries_row_xid ON memory_entries (row_xid);
        CREATE FUNCTION _workbench_memory_touch() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            NEW.row_xid := pg_current_xact_id();
            RETURN NEW;
        END $$;
        CREATE TRIGGER memory_entries_touch BEFORE UPDATE ON memory_entries
            FOR EACH ROW EXECUTE FUNCTION _workbench_memory_touch();
        """
    )


@migration
def m012_spend_ledger(conn: psycopg.Connection) -> None:
    # workbench.store.spend: what every process (the server, each Dask worker) has reserved and spent, per
    # scope. A reservation is one conditional UPDATE (`... WHERE settled + reserved + cost <= limit`), so two
    # processes can never both pass a limit. period: the UTC day for daily scopes, 'all' for a task's lifetime.
    # rate_windows: calls per scope per minute (a fixed one-minute window). api_keys gets a key's own limits.
    conn.execute(
        """
        CREATE TABLE spend_ledger (
            scope text NOT NULL CHECK (scope IN ('key', 'task', 'agent', 'day')),
            name text NOT NULL,
            period text NOT NULL,
            reserved_usd double precision NOT NULL DEFAULT 0,
            settled_usd double precision NOT NULL DEFAULT 0 CHECK (settled_usd >= 0),
            calls bigint NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (scope, name, period)
        );
        CREATE TABLE rate_windows (
            scope text NOT NULL,
            name text NOT NULL,
            window_start timestamptz NOT NULL,
            calls integer NOT NULL,
            PRIMARY KEY (scope, name, window_start)
        );
        ALTER TABLE api_keys ADD COLUMN budget_usd_per_day double precision
            CHECK (budget_usd_per_day IS NULL OR (budget_usd_per_day >= 0 AND budget_usd_per_day < 1e12));
        ALTER TABLE api_keys ADD COLUMN rate_per_minute integer CHECK (rate_per_minute IS NULL OR rate_per_minute >= 0);
        """
    )


@migration
def m013_spend_holds(conn: psycopg.Connection) -> None:
    # workbench.store.spend: one row per reservation not yet settled, with a lease; a process killed between
    # reserve and settle leaves its row, and the next reservation releases it once the lease is over.
    conn.execute(
        """
        CREATE TABLE spend_holds (
            hold_id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            claims jsonb NOT NULL,
            usd double precision NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now(),
            expires_at timestamptz NOT NULL
        );
        CREATE INDEX spend_holds_expiry ON spend_holds (expires_at);
        """
    )
