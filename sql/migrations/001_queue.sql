-- npd-sync schema, version 1: the change log the triggers write, and the queue the listener works.
--
-- Applied once by `npd-sync install`, in one transaction, recorded in npd_sync.migrations.
-- The application's tables are attached separately (sql/triggers/capture.sql), per configured table.

-- Tables npd-sync captures changes from. The id is what the change log stores, so renaming
-- a table never orphans queued work.
CREATE TABLE npd_sync.tables (
    id smallint PRIMARY KEY,
    relation regclass NOT NULL UNIQUE,
    name text NOT NULL UNIQUE,
    key_column name NOT NULL,
    ddl_hash text NOT NULL,
    attached_at timestamptz NOT NULL DEFAULT now()
);

-- Written by the triggers, in the application's transaction: one row per changed row.
-- Append-only, narrow and unindexed so that the application pays as little as possible; the
-- listener moves rows from here into npd_sync.queue.
CREATE TABLE npd_sync.changes (
    table_id smallint NOT NULL,
    row_key text NOT NULL,
    -- The monday_id a deleted row had, so that its item can be archived.
    archive_id text,
    changed_at timestamptz NOT NULL DEFAULT now()
);

-- Whether a listener is idle and waiting for a NOTIFY (last_value > 0). A sequence, because
-- reading it costs a writer less than any other shared flag PostgreSQL offers, and setting it
-- is not transactional: writers see it at once. See listener/capture/notify.py.
CREATE SEQUENCE npd_sync.waiting MINVALUE 0 START 0;

-- One row per application row with work outstanding. Many changes to one row fold into one
-- entry (its version goes up), so a burst becomes one push of the latest state.
CREATE TABLE npd_sync.queue (
    table_id smallint NOT NULL,
    row_key text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    -- When the oldest change folded into this entry was made.
    changed_at timestamptz NOT NULL,
    -- Items to archive (or delete): those of deleted rows.
    archive_ids text[] NOT NULL DEFAULT '{}',
    -- An item id learnt from Monday but not yet written back to the row.
    monday_id text,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    claims integer NOT NULL DEFAULT 0,
    -- A create may have reached Monday without its reply: look the row up before creating.
    uncertain boolean NOT NULL DEFAULT false,
    next_attempt_at timestamptz NOT NULL,
    lease_until timestamptz,
    leased_by text,
    last_error text,
    PRIMARY KEY (table_id, row_key)
);
CREATE INDEX queue_due ON npd_sync.queue (next_attempt_at) WHERE state = 'pending';

-- Running listeners, each refreshing its row while alive (read by `npd-sync status`).
CREATE TABLE npd_sync.listeners (
    id text PRIMARY KEY,
    hostname text NOT NULL,
    pid integer NOT NULL,
    version text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now()
);

-- The triggers ran as whoever wrote the application's tables, so that role needed to append
-- to the change log. Taken back by a later migration: a forged record could archive any item.
GRANT USAGE ON SCHEMA npd_sync TO PUBLIC;
GRANT INSERT ON npd_sync.changes TO PUBLIC;
GRANT SELECT ON SEQUENCE npd_sync.waiting TO PUBLIC;
