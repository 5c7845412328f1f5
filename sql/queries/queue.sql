-- The durable queue: change records in, leased entries out, outcomes back
-- (see listener/outbound/queue.py).

-- name: ingest
-- Move up to $1 change records into the queue, folding all changes of one row into one entry.
-- SKIP LOCKED lets several listeners ingest at once; application inserts never wait on it.
-- A record that can never be synced (its table is not captured, its key is longer than $2
-- bytes, more than a queue entry holds) goes to npd_sync.rejected instead, with the reason;
-- those are returned, as a JSON array of {table_id, key (cut short), reason}, for the log.
WITH taken AS (
    DELETE FROM npd_sync.changes
     WHERE ctid = ANY (ARRAY(SELECT ctid FROM npd_sync.changes LIMIT $1 FOR UPDATE SKIP LOCKED))
    RETURNING table_id, row_key, archive_id, changed_at
), judged AS (
    SELECT t.*,
           CASE WHEN NOT EXISTS (SELECT FROM npd_sync.tables c WHERE c.id = t.table_id)
                    THEN 'no captured table has id ' || t.table_id
                WHEN octet_length(t.row_key) > $2::int
                    THEN 'key of ' || octet_length(t.row_key) || ' bytes (at most ' || $2::int || ')'
           END AS reason
      FROM taken t
), rejected AS (
    INSERT INTO npd_sync.rejected (table_id, row_key, archive_id, changed_at, reason)
    SELECT table_id, left(row_key, 200), archive_id, changed_at, reason
      FROM judged WHERE reason IS NOT NULL
    RETURNING table_id, row_key, reason
), folded AS (
    SELECT table_id, row_key, min(changed_at) AS changed_at, max(changed_at) AS last_changed_at,
           coalesce(array_agg(DISTINCT archive_id) FILTER (WHERE archive_id IS NOT NULL), '{}')
               AS archive_ids
      FROM judged WHERE reason IS NULL GROUP BY table_id, row_key
), stored AS (
    INSERT INTO npd_sync.queue AS q
           (table_id, row_key, changed_at, last_changed_at, archive_ids, next_attempt_at)
    -- Every statement that locks several queue entries locks them in key order: no deadlocks.
    SELECT table_id, row_key, changed_at, last_changed_at, archive_ids, now() FROM folded
     ORDER BY table_id, row_key
    ON CONFLICT (table_id, row_key) DO UPDATE SET
        version = q.version + 1,
        last_changed_at = greatest(q.last_changed_at, excluded.last_changed_at),
        archive_ids = ARRAY(SELECT DISTINCT unnest(q.archive_ids || excluded.archive_ids)),
        -- New data may fix what made the row fail: it gets a fresh set of attempts.
        state = 'pending',
        -- (claims counts claims since the last fresh start: see queue.Entry.interrupted)
        attempts = CASE WHEN q.state = 'failed' THEN 0 ELSE q.attempts END,
        claims = CASE WHEN q.state = 'failed' THEN 0 ELSE q.claims END,
        next_attempt_at = CASE WHEN q.state = 'failed' THEN now() ELSE q.next_attempt_at END,
        changed_at = CASE WHEN q.state = 'failed' THEN excluded.changed_at ELSE q.changed_at END
    RETURNING 1
)
SELECT (SELECT count(*) FROM taken) AS records, (SELECT count(*) FROM stored) AS entries,
       (SELECT json_agg(json_build_object('table_id', table_id, 'key', left(row_key, 40),
                                          'reason', reason))
          FROM rejected)::text AS rejected;

-- name: enqueue
-- Queue the rows $2 of table $1 (a backfill), marked uncertain so that the worker looks for an
-- item already carrying their npd_id (an earlier import) before creating one.
INSERT INTO npd_sync.queue AS q (table_id, row_key, changed_at, next_attempt_at, uncertain)
SELECT $1, k, now(), now(), true FROM unnest($2::text[]) AS k
 ORDER BY k
ON CONFLICT (table_id, row_key) DO UPDATE SET
    version = q.version + 1,
    uncertain = true,
    state = 'pending',
    attempts = CASE WHEN q.state = 'failed' THEN 0 ELSE q.attempts END,
    claims = CASE WHEN q.state = 'failed' THEN 0 ELSE q.claims END,
    next_attempt_at = CASE WHEN q.state = 'failed' THEN now() ELSE q.next_attempt_at END;

-- name: backlog_left
-- Entries of the tables $1 still pending, and in how many seconds the next one is due.
SELECT count(*) AS pending,
       extract(epoch FROM min(next_attempt_at) - now())::float8 AS due_in
  FROM npd_sync.queue
 WHERE table_id = ANY ($1::int2[]) AND state = 'pending';

-- name: claim
-- Lease up to $1 due entries of the tables $2 to listener $3 for $4 seconds. An entry whose
-- lease ran out (its holder crashed) is due again.
WITH picked AS (
    SELECT table_id, row_key FROM npd_sync.queue
     WHERE state = 'pending' AND next_attempt_at <= now() AND table_id = ANY ($2::int2[])
       AND (lease_until IS NULL OR lease_until < now())
     ORDER BY next_attempt_at
     LIMIT $1
       FOR UPDATE SKIP LOCKED
)
UPDATE npd_sync.queue q
   SET lease_until = now() + make_interval(secs => $4), leased_by = $3, claims = q.claims + 1
  FROM picked
 WHERE q.table_id = picked.table_id AND q.row_key = picked.row_key
RETURNING q.table_id, q.row_key, q.version, q.claims, q.attempts, q.uncertain, q.monday_id,
          q.archive_ids, q.changed_at, q.pull, q.last_changed_at, q.monday_changed_at;

-- name: renew_leases
-- Keep listener $1's leases on the entries $3 (keys as 'table_id:row_key') alive for $2 more
-- seconds while their work is in flight. An entry locked right now (by an ingest) is renewed
-- next time rather than waited for.
UPDATE npd_sync.queue q SET lease_until = now() + make_interval(secs => $2)
  FROM (SELECT table_id, row_key FROM npd_sync.queue
         WHERE leased_by = $1 AND lease_until IS NOT NULL
           AND table_id || ':' || row_key = ANY ($3::text[])
           FOR UPDATE SKIP LOCKED) mine
 WHERE q.table_id = mine.table_id AND q.row_key = mine.row_key;

-- name: release_leases
-- Give back what listener $1 holds: all of it ($2 null, on shutdown) or the entries $2 (keys
-- as 'table_id:row_key') of a batch that could not finish.
UPDATE npd_sync.queue q SET lease_until = NULL, leased_by = NULL
  FROM (SELECT table_id, row_key FROM npd_sync.queue
         WHERE leased_by = $1
           AND ($2::text[] IS NULL OR table_id || ':' || row_key = ANY ($2::text[]))
         ORDER BY table_id, row_key
           FOR UPDATE) mine
 WHERE q.table_id = mine.table_id AND q.row_key = mine.row_key;

-- name: complete
-- Record what happened to claimed entries. Per entry: outcome 'done' (deleted, unless the row
-- changed again meanwhile), 'retry' (an attempt failed), 'failed' (permanently) or 'wait' (not
-- an attempt: rate limits, a row lock); $1 is the listener, so that an entry whose lease was
-- taken over is left to its new holder.
WITH r AS (
    SELECT * FROM unnest($2::int2[], $3::text[], $4::int4[], $5::int4[], $6::text[],
                         $7::jsonb[], $8::float8[], $9::text[], $10::bool[])
        AS r(table_id, row_key, claims, version, outcome, error, delay, monday_id, uncertain)
), mine AS (
    SELECT r.*, q.version = r.version AS current
      FROM npd_sync.queue q JOIN r USING (table_id, row_key)
     WHERE q.leased_by = $1 AND q.claims = r.claims
     ORDER BY table_id, row_key
       FOR UPDATE OF q
), done AS (
    DELETE FROM npd_sync.queue q USING mine m
     WHERE q.table_id = m.table_id AND q.row_key = m.row_key
       AND m.outcome = 'done' AND m.current
    RETURNING 1
), kept AS (
    UPDATE npd_sync.queue q SET
        lease_until = NULL,
        leased_by = NULL,
        monday_id = m.monday_id,
        uncertain = m.uncertain,
        last_error = m.error,
        last_error_at = CASE WHEN m.error IS NOT NULL THEN now() ELSE q.last_error_at END,
        state = CASE WHEN m.outcome = 'failed' AND m.current THEN 'failed' ELSE 'pending' END,
        attempts = CASE
            WHEN NOT m.current AND m.outcome IN ('done', 'failed') THEN 0
            WHEN m.outcome IN ('retry', 'failed') THEN q.attempts + 1
            ELSE q.attempts END,
        -- A wait is an outcome but not an attempt: its claim is not counted, or the entry
        -- would look interrupted next time and be looked up on Monday again for nothing.
        claims = CASE WHEN NOT m.current AND m.outcome IN ('done', 'failed') THEN 0
                      WHEN m.outcome = 'wait' THEN greatest(q.claims - 1, 0)
                      ELSE q.claims END,
        next_attempt_at = CASE
            WHEN NOT m.current AND m.outcome IN ('done', 'failed') THEN now()
            ELSE now() + make_interval(secs => m.delay) END
      FROM mine m
     WHERE q.table_id = m.table_id AND q.row_key = m.row_key
       AND NOT (m.outcome = 'done' AND m.current)
    RETURNING 1
)
SELECT (SELECT count(*) FROM done) + (SELECT count(*) FROM kept);

-- name: pending_work
-- Whether anything is waiting: change records not yet ingested, inbox entries due (items
-- Monday says changed; only when $2, inbound is on), or queue entries of the tables $1; and
-- in how many seconds the next entry falls due (its retry time, or the end of the lease
-- another listener, or a batch that failed, holds it under).
SELECT EXISTS (SELECT FROM npd_sync.changes)
       OR ($2 AND EXISTS (SELECT FROM npd_sync.inbox
                   WHERE state = 'pending' AND next_attempt_at <= now()
                     AND (lease_until IS NULL OR lease_until < now()))) AS changes,
       (SELECT extract(epoch FROM min(greatest(next_attempt_at, lease_until)) - now())::float8
          FROM npd_sync.queue
         WHERE state = 'pending' AND table_id = ANY ($1::int2[])) AS due_in;

-- name: queue_rows
-- Queue the rows $2 of table $1 (rows inbound inserted: what they owe Monday, their npd_id),
-- due now; rows queued already are left as they are.
INSERT INTO npd_sync.queue (table_id, row_key, changed_at, next_attempt_at)
SELECT $1::int2, k, now(), now() FROM unnest($2::text[]) AS k ORDER BY k
ON CONFLICT (table_id, row_key) DO NOTHING;

-- name: depth
-- Rows waiting per table and state, for the metrics (change records not yet ingested count as
-- pending, one per record).
SELECT table_id, state, sum(n)::bigint AS n FROM (
    SELECT table_id,
           CASE WHEN state = 'failed' THEN 'failed'
                WHEN lease_until > now() THEN 'in_flight'
                ELSE 'pending' END AS state,
           count(*) AS n
      FROM npd_sync.queue GROUP BY 1, 2
    UNION ALL
    SELECT table_id, 'pending', count(*) FROM npd_sync.changes GROUP BY 1
) counts GROUP BY 1, 2;

-- name: oldest_pending
-- For health: the age in seconds of the oldest change of the tables $1 still to be synced
-- (pending queue entries, in flight or not, and change records not taken in yet; NULL: none);
-- how long ago a listener alive in the last $2 seconds last synced or failed an entry for
-- good, as their heartbeats say (NULL: none says); why Monday asked every listener to pause.
SELECT extract(epoch FROM now() - least(
           (SELECT min(q.changed_at) FROM npd_sync.queue q
             WHERE q.state = 'pending' AND q.table_id = ANY ($1::int2[])),
           (SELECT min(c.changed_at) FROM npd_sync.changes c)))::float8 AS seconds,
       (SELECT extract(epoch FROM now() - max(l.finished_at))::float8 FROM npd_sync.listeners l
         WHERE l.seen_at > now() - make_interval(secs => $2)) AS finished_ago,
       (SELECT m.pause_reason FROM npd_sync.monday m WHERE m.paused_until > now()) AS paused;

-- name: latest_pending_error
-- The latest error of a pending entry of the tables $1 (why the oldest changes wait, likely).
SELECT last_error FROM npd_sync.queue
 WHERE state = 'pending' AND table_id = ANY ($1::int2[]) AND last_error IS NOT NULL
 ORDER BY last_error_at DESC NULLS LAST
 LIMIT 1;
