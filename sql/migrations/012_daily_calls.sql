-- npd-sync schema, version 12: Monday's daily call limit (it resets at 00:00 UTC), shared by
-- every listener: the UTC day the counts are of; npd-sync's own calls that day (a call refused
-- by a rate limit counts 0.1) and those not yet taken from the pacing bucket; the bucket
-- (tokens at a moment; NULL: full); the limit as Monday states it (platform_api, NULL: not
-- known) and the calls of other apps and tokens that Monday's last figure showed beyond
-- npd-sync's own, when it was read; when a listener last asked.
CREATE TABLE npd_sync.monday_day (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    day date NOT NULL DEFAULT (now() AT TIME ZONE 'UTC')::date,
    own_calls real NOT NULL DEFAULT 0,
    unpaid real NOT NULL DEFAULT 0,
    tokens real,
    tokens_at timestamptz,
    daily_limit integer,
    others_used real,
    account_used integer,
    account_updated_at timestamptz,
    learnt_at timestamptz
);
INSERT INTO npd_sync.monday_day DEFAULT VALUES;
