-- npd-sync schema, version 13: what reconciliation costs, so that it keeps to its share of
-- Monday's daily calls (`[tuning] reconcile_share`): the calls of each board's last
-- incremental pass (its activity log) and of its last full read (NULL: none yet), and the
-- calls its passes made on `day` (UTC), what is left of the share being spread until midnight.
ALTER TABLE npd_sync.boards ADD COLUMN pass_calls integer, ADD COLUMN full_calls integer,
    ADD COLUMN day date, ADD COLUMN day_calls integer NOT NULL DEFAULT 0;
