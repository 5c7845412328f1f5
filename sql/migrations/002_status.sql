-- npd-sync schema, version 2: what `status` shows and the state all listeners share.

-- When an entry's last error happened (status lists the latest errors first).
ALTER TABLE npd_sync.queue ADD COLUMN last_error_at timestamptz;

-- Monday's account-wide state, shared by every listener of this database: a pause (rate
-- limit, daily limit, refused token) and the complexity budget as Monday last reported it.
CREATE TABLE npd_sync.monday (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    paused_until timestamptz,
    pause_reason text,
    complexity_remaining bigint,
    complexity_reset_at timestamptz,
    requests_remaining integer,
    requests_reset_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO npd_sync.monday DEFAULT VALUES;
