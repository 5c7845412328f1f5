-- npd-sync schema, version 7: nothing for PUBLIC, change records set aside, and each
-- listener's own view of its health. (The secret that marks npd-sync's own sessions is
-- created by install itself, before the capture that needs its digest: see install.py.)

-- The capture's trigger functions run as the role that installed them (SECURITY DEFINER), so
-- the application's roles need no right on anything here: a role that cannot write a synced
-- table cannot write a change record either.
REVOKE ALL ON SCHEMA npd_sync FROM PUBLIC;
REVOKE ALL ON npd_sync.changes FROM PUBLIC;
REVOKE ALL ON SEQUENCE npd_sync.waiting FROM PUBLIC;

-- Change records that can never be synced (their table is not captured, their key is longer
-- than a queue entry holds), taken out of the change log by the listener that found them.
CREATE TABLE npd_sync.rejected (
    table_id smallint NOT NULL,
    row_key text NOT NULL,  -- cut to 200 characters
    archive_id text,
    changed_at timestamptz NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    reason text NOT NULL
);

-- What a listener finds wrong with itself (/healthz's reason), NULL while it is healthy; and
-- when it last synced or failed an entry for good (the queue moves if any listener does).
ALTER TABLE npd_sync.listeners ADD COLUMN problem text, ADD COLUMN finished_at timestamptz;
