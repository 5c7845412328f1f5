-- npd-sync schema, version 4: inbound sync, Monday to PostgreSQL.

-- The secret in the URL Monday's webhooks are registered with (a personal token's webhooks
-- carry no signature): in the database, so that every listener's receiver accepts every
-- delivery. Only npd-sync's own roles can read it.
CREATE TABLE npd_sync.receiver (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    secret text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The webhooks `npd-sync webhooks install` created, per board and event.
CREATE TABLE npd_sync.webhooks (
    board_id text NOT NULL,
    event text NOT NULL,
    webhook_id text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (board_id, event)
);

-- Every delivery accepted, stored before the receiver answers 200; a delivery repeated by
-- Monday (same triggerUuid) is stored once. Kept a few days for deduplication and history.
CREATE TABLE npd_sync.events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    trigger_uuid text NOT NULL UNIQUE,
    board_id text,
    item_id text,
    type text NOT NULL,
    column_id text,
    user_id text,
    changed_at timestamptz,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_received ON npd_sync.events (received_at);

-- Items Monday says changed and no listener has looked at yet, one entry per item. Entries
-- of items linked to a row move into npd_sync.queue (flagged `pull`: read the item first);
-- the others (items created on the board) are worked from here.
CREATE TABLE npd_sync.inbox (
    board_id text NOT NULL,
    item_id text NOT NULL,
    version integer NOT NULL DEFAULT 1,
    changed_at timestamptz NOT NULL,
    monday_changed_at timestamptz,
    state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    lease_until timestamptz,
    leased_by text,
    last_error text,
    last_error_at timestamptz,
    PRIMARY KEY (board_id, item_id)
);

-- A queue entry may stand for a change on Monday's side too: read the item before deciding.
ALTER TABLE npd_sync.queue
    ADD COLUMN pull boolean NOT NULL DEFAULT false,
    -- When Monday's side changed, as Monday says (for the newest_wins policy).
    ADD COLUMN monday_changed_at timestamptz,
    -- When the database side last changed, as the capture recorded it (newest_wins).
    ADD COLUMN last_changed_at timestamptz;

-- A link whose item was archived or deleted on the board (on_monday_delete = unlink): kept so
-- that a restored item finds its row again.
ALTER TABLE npd_sync.links ADD COLUMN unlinked_at timestamptz;

-- A field changed on both sides since they last agreed, to different values. Values are in
-- the form npd-sync sends to Monday (the agreed record's form). The losing value is kept.
CREATE TABLE npd_sync.conflicts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_id smallint NOT NULL,
    row_key text NOT NULL,
    column_id text NOT NULL,
    item_id text,
    agreed_value jsonb,
    npd_value jsonb,
    monday_value jsonb,
    npd_changed_at timestamptz,
    monday_changed_at timestamptz,
    policy text NOT NULL,
    state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'resolved')),
    winner text CHECK (winner IN ('npd', 'monday')),
    resolved_by text,
    detected_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);
CREATE UNIQUE INDEX conflicts_open ON npd_sync.conflicts (table_id, row_key, column_id)
    WHERE state = 'open';
CREATE INDEX conflicts_row ON npd_sync.conflicts (table_id, row_key);

-- Reconciliation's place in each board's activity log.
CREATE TABLE npd_sync.boards (
    board_id text PRIMARY KEY,
    watermark timestamptz,
    full_read_at timestamptz,
    last_pull_at timestamptz
);
