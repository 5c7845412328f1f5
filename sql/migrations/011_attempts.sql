-- npd-sync schema, version 11: each row's attempts, for its history (the console's row page).
--
-- One row per entry a listener pushed or tried to push: when, what it did and sent, what came
-- of it, and Monday's request id; kept for `[tuning] history_days`.
CREATE TABLE npd_sync.attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_id smallint NOT NULL,
    row_key text NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    outcome text NOT NULL,
    action text,
    item_id text,
    sent jsonb,
    error jsonb,
    request_id text,
    listener_id text
);
CREATE INDEX attempts_row ON npd_sync.attempts (table_id, row_key, at DESC);
CREATE INDEX attempts_at ON npd_sync.attempts (at);
