-- Inbound: webhook deliveries in, items to look at out (see listener/inbound/).

-- name: receiver_secret
-- The secret in the webhooks' URL, when `npd-sync webhooks install` has made one.
SELECT secret FROM npd_sync.receiver;

-- name: make_receiver_secret
-- Keep secret $1 unless there is one already; returns the one in force.
INSERT INTO npd_sync.receiver (secret) VALUES ($1)
ON CONFLICT (id) DO UPDATE SET secret = npd_sync.receiver.secret
RETURNING secret;

-- name: store_events
-- Store deliveries (one per element of the arrays: triggerUuid, board, item, type, column,
-- user, when it changed on Monday), each triggerUuid once, and mark each new one's item in
-- the inbox when its board is one of $8, the configured ones (one entry per item; a later
-- delivery bumps its version). Returns the triggerUuids that were new. Items are locked in
-- key order, as everywhere.
WITH new AS (
    INSERT INTO npd_sync.events
           (trigger_uuid, board_id, item_id, type, column_id, user_id, changed_at)
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::timestamptz[])
    ON CONFLICT (trigger_uuid) DO NOTHING
    RETURNING trigger_uuid, board_id, item_id, changed_at
), marked AS (
    INSERT INTO npd_sync.inbox AS i (board_id, item_id, changed_at, monday_changed_at)
    SELECT board_id, item_id, now(), max(changed_at) FROM new
     WHERE board_id = ANY ($8::text[]) AND item_id IS NOT NULL
     GROUP BY board_id, item_id
     ORDER BY board_id, item_id
    ON CONFLICT (board_id, item_id) DO UPDATE SET
        version = i.version + 1,
        monday_changed_at = greatest(i.monday_changed_at, excluded.monday_changed_at),
        state = 'pending',
        attempts = CASE WHEN i.state = 'failed' THEN 0 ELSE i.attempts END,
        next_attempt_at = CASE WHEN i.state = 'failed' THEN now() ELSE i.next_attempt_at END
    RETURNING 1
)
SELECT coalesce(array_agg(trigger_uuid), '{}') FROM new;

-- name: take_linked
-- Take up to $1 inbox entries of items linked to a row out of the inbox, returning per row
-- when Monday first said so and when its item last changed: the row's queue entry reads the
-- item first (the caller queues them in the same transaction). Entries of items no row is
-- linked to stay (created on the board: see claim_inbox).
WITH picked AS (
    SELECT i.board_id, i.item_id FROM npd_sync.inbox i
     WHERE i.state = 'pending' AND (i.lease_until IS NULL OR i.lease_until < now())
       AND EXISTS (SELECT FROM npd_sync.links l WHERE l.item_id = i.item_id)
     ORDER BY i.board_id, i.item_id
     LIMIT $1
       FOR UPDATE SKIP LOCKED
), taken AS (
    DELETE FROM npd_sync.inbox i USING picked p
     WHERE i.board_id = p.board_id AND i.item_id = p.item_id
    RETURNING i.item_id, i.changed_at, i.monday_changed_at
)
SELECT l.table_id, l.row_key, min(t.changed_at) AS changed_at,
       max(t.monday_changed_at) AS monday_changed_at
  FROM taken t JOIN npd_sync.links l ON l.item_id = t.item_id
 GROUP BY l.table_id, l.row_key;

-- name: claim_inbox
-- Lease up to $1 due inbox entries of items no row is linked to, on the boards $2, to
-- listener $3 for $4 seconds.
WITH picked AS (
    SELECT board_id, item_id FROM npd_sync.inbox i
     WHERE state = 'pending' AND next_attempt_at <= now() AND board_id = ANY ($2::text[])
       AND (lease_until IS NULL OR lease_until < now())
       AND NOT EXISTS (SELECT FROM npd_sync.links l WHERE l.item_id = i.item_id)
     ORDER BY next_attempt_at
     LIMIT $1
       FOR UPDATE SKIP LOCKED
)
UPDATE npd_sync.inbox i
   SET lease_until = now() + make_interval(secs => $4), leased_by = $3
  FROM picked
 WHERE i.board_id = picked.board_id AND i.item_id = picked.item_id
RETURNING i.board_id, i.item_id, i.version, i.attempts;

-- name: complete_inbox
-- Record what happened to claimed inbox entries (boards $2, items $3, versions $4): 'done'
-- deletes one (unless it was marked again meanwhile), 'retry' and 'failed' record the error
-- $5 and the delay $6; only entries listener $1 still holds.
WITH r AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::int4[], $5::text[], $6::jsonb[],
                         $7::float8[]) AS r(board_id, item_id, version, outcome, error, delay)
), mine AS (
    SELECT r.*, i.version = r.version AS current
      FROM npd_sync.inbox i JOIN r USING (board_id, item_id)
     WHERE i.leased_by = $1
     ORDER BY board_id, item_id
       FOR UPDATE OF i
), done AS (
    DELETE FROM npd_sync.inbox i USING mine m
     WHERE i.board_id = m.board_id AND i.item_id = m.item_id AND m.outcome = 'done' AND m.current
    RETURNING 1
), kept AS (
    UPDATE npd_sync.inbox i SET
        lease_until = NULL, leased_by = NULL,
        last_error = m.error,
        last_error_at = CASE WHEN m.error IS NOT NULL THEN now() ELSE i.last_error_at END,
        state = CASE WHEN m.outcome = 'failed' AND m.current THEN 'failed' ELSE 'pending' END,
        attempts = CASE WHEN m.outcome IN ('retry', 'failed') THEN i.attempts + 1
                        ELSE i.attempts END,
        next_attempt_at = now() + make_interval(secs => m.delay)
      FROM mine m
     WHERE i.board_id = m.board_id AND i.item_id = m.item_id
       AND NOT (m.outcome = 'done' AND m.current)
    RETURNING 1
)
SELECT (SELECT count(*) FROM done) + (SELECT count(*) FROM kept);

-- name: forget_events
-- Deliveries older than $1 seconds: their triggerUuid will not come again (Monday retries
-- for 30 minutes).
DELETE FROM npd_sync.events WHERE received_at < now() - make_interval(secs => $1);

-- name: mark_items
-- Put the items $2 of board $1 in the inbox, as a delivery would (reconciliation found them
-- changed; $3: when, as the board's activity log dates it, or null).
INSERT INTO npd_sync.inbox AS i (board_id, item_id, changed_at, monday_changed_at)
SELECT $1, v.item_id, now(), v.at FROM unnest($2::text[], $3::timestamptz[]) AS v(item_id, at)
 ORDER BY v.item_id
ON CONFLICT (board_id, item_id) DO UPDATE SET
    version = i.version + 1,
    monday_changed_at = greatest(i.monday_changed_at, excluded.monday_changed_at),
    state = 'pending',
    attempts = CASE WHEN i.state = 'failed' THEN 0 ELSE i.attempts END,
    next_attempt_at = CASE WHEN i.state = 'failed' THEN now() ELSE i.next_attempt_at END;

-- name: board_state
-- Where reconciliation stands on board $1 (no row: never pulled).
SELECT watermark, full_read_at, last_pull_at FROM npd_sync.boards WHERE board_id = $1;

-- name: board_pulled
-- Board $1 was reconciled up to $2 (a full read when $3) in $4 calls, counted in the UTC day's.
INSERT INTO npd_sync.boards AS b (board_id, watermark, full_read_at, last_pull_at, pass_calls,
                                  full_calls, day, day_calls)
VALUES ($1, $2, CASE WHEN $3 THEN now() END, now(), CASE WHEN NOT $3 THEN $4::integer END,
        CASE WHEN $3 THEN $4::integer END, (now() AT TIME ZONE 'UTC')::date, $4::integer)
ON CONFLICT (board_id) DO UPDATE SET
    watermark = excluded.watermark,
    full_read_at = coalesce(excluded.full_read_at, b.full_read_at),
    last_pull_at = now(),
    pass_calls = coalesce(excluded.pass_calls, b.pass_calls),
    full_calls = coalesce(excluded.full_calls, b.full_calls),
    day = excluded.day,
    day_calls = CASE WHEN b.day = excluded.day THEN b.day_calls ELSE 0 END + excluded.day_calls;

-- name: boards_reconciled
-- Reconciliation on boards $1: when each was last pulled, what its last incremental pass and
-- full read cost in calls, and the calls its passes made today (UTC; boards never pulled have
-- no row).
SELECT board_id, last_pull_at, pass_calls, full_calls,
       CASE WHEN day = (now() AT TIME ZONE 'UTC')::date THEN day_calls ELSE 0 END AS today
  FROM npd_sync.boards WHERE board_id = ANY ($1::text[]);

-- name: table_links
-- The links of table $1's rows: item, row, agreed values, and whether unlinked.
SELECT item_id, row_key, agreed::text AS agreed, unlinked_at IS NOT NULL AS unlinked
  FROM npd_sync.links WHERE table_id = $1;

-- name: links_of_items
-- The links of table $1 to the items $2: when both sides last agreed on each, and whether
-- it is unlinked.
SELECT item_id, agreed_at, unlinked_at IS NOT NULL AS unlinked
  FROM npd_sync.links WHERE table_id = $1 AND item_id = ANY ($2::text[]);
