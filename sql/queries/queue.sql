-- The durable queue, npd_sync.queue: one entry per application row with work outstanding.
-- Every statement that writes the queue is in this file, and listener/engine/queue.py is the
-- one module that runs them. The life of an entry, one statement per transition:
--
--   transition  from                         to
--   ----------  ---------------------------  -----------------------------------------------
--   arrive      none, pending or failed:     pending. A new entry is due now. A failed one
--               new data for the row (a      starts afresh: attempts and claims 0, due now.
--               captured change, a backfill, A pending one keeps its due time (a retry's
--               an edit on the board, a      backoff stands) unless the arrival is urgent.
--               resolved conflict)           Its version goes up, so that a listener holding
--                                            it finishes the old state and leaves the entry.
--   claim       pending, due, not leased     leased to one listener for lease_seconds
--   renew       leased by us                 leased by us, for longer
--   release     leased by us                 pending, free (not an attempt)
--   complete    leased by us, by outcome:
--                 done                       gone; pending, due now, if new data arrived
--                 retry                      pending after a delay; attempts + 1
--                 wait                       pending after a delay; not an attempt
--                 failed                     failed, until new data arrives or `retry`;
--                                            pending, due now, if new data arrived
--   retry       failed                       pending, due now, attempts and claims 0
--   discard     failed                       gone: retries stop (an operator's "stop
--                                            retrying"); new data arrives as for any row
--
-- "Leased" is a pending entry whose lease_until lies ahead. A conflict is not a state of the
-- entry: the entry completes (done) and the conflict waits in npd_sync.conflicts; resolving it
-- arrives (urgent, read the item first). Several entries are always locked in key order, so
-- that two statements never deadlock.

-- name: arrive
-- New data for rows: $1 is a JSON array of {table_id, row_key, changed_at, last_changed_at,
-- archive_ids, pull, monday_changed_at, uncertain} (any but the first two may be missing).
-- $2: urgent, due now even if a retry's backoff was running. Returns how many entries arrived.
WITH a AS (
    SELECT a.table_id, a.row_key,
           coalesce(a.changed_at, now()) AS changed_at, a.last_changed_at,
           coalesce(a.archive_ids, '{}') AS archive_ids, coalesce(a.pull, false) AS pull,
           a.monday_changed_at, coalesce(a.uncertain, false) AS uncertain
      FROM jsonb_to_recordset($1::jsonb) AS a(table_id int2, row_key text,
               changed_at timestamptz, last_changed_at timestamptz, archive_ids text[],
               pull boolean, monday_changed_at timestamptz, uncertain boolean)
), stored AS (
    INSERT INTO npd_sync.queue AS q
           (table_id, row_key, changed_at, last_changed_at, archive_ids, pull,
            monday_changed_at, uncertain, next_attempt_at)
    SELECT table_id, row_key, changed_at, last_changed_at, archive_ids, pull,
           monday_changed_at, uncertain, now()
      FROM a ORDER BY table_id, row_key
    ON CONFLICT (table_id, row_key) DO UPDATE SET
        version = q.version + 1,
        last_changed_at = greatest(q.last_changed_at, excluded.last_changed_at),
        archive_ids = ARRAY(SELECT DISTINCT unnest(q.archive_ids || excluded.archive_ids)),
        pull = q.pull OR excluded.pull,
        monday_changed_at = greatest(q.monday_changed_at, excluded.monday_changed_at),
        uncertain = q.uncertain OR excluded.uncertain,
        state = 'pending',
        -- New data may cure what made the entry fail: it starts afresh (claims counts the
        -- claims since the last fresh start: see queue.Entry.interrupted).
        attempts = CASE WHEN q.state = 'failed' THEN 0 ELSE q.attempts END,
        claims = CASE WHEN q.state = 'failed' THEN 0 ELSE q.claims END,
        changed_at = CASE WHEN q.state = 'failed' THEN excluded.changed_at ELSE q.changed_at END,
        next_attempt_at = CASE WHEN q.state = 'failed' OR $2 THEN now()
                               ELSE q.next_attempt_at END
    RETURNING 1
)
SELECT count(*) FROM stored;

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

-- name: due_count
-- How many entries of the tables $1 are due now (as `claim` takes them), counting up to $2.
SELECT count(*)::int AS due FROM (
    SELECT FROM npd_sync.queue
     WHERE state = 'pending' AND next_attempt_at <= now() AND table_id = ANY ($1::int2[])
       AND (lease_until IS NULL OR lease_until < now())
     LIMIT $2
) d;

-- name: renew
-- Keep listener $1's leases on the entries ($3 tables, $4 keys) alive for $2 more seconds
-- while their work is in flight. An entry locked right now (by an arrival) is renewed next
-- time rather than waited for.
UPDATE npd_sync.queue q SET lease_until = now() + make_interval(secs => $2)
  FROM (SELECT q.table_id, q.row_key
          FROM unnest($3::int2[], $4::text[]) AS e(table_id, row_key)
          JOIN npd_sync.queue q USING (table_id, row_key)
         WHERE q.leased_by = $1 AND q.lease_until IS NOT NULL
           FOR UPDATE OF q SKIP LOCKED) mine
 WHERE q.table_id = mine.table_id AND q.row_key = mine.row_key;

-- name: release
-- Give back what listener $1 holds: all of it ($2 and $3 null, on shutdown) or the entries
-- ($2 tables, $3 keys) of a batch that could not finish.
UPDATE npd_sync.queue q SET lease_until = NULL, leased_by = NULL
  FROM (SELECT table_id, row_key FROM npd_sync.queue
         WHERE leased_by = $1
           AND ($2::int2[] IS NULL
                OR (table_id, row_key) IN (SELECT * FROM unnest($2::int2[], $3::text[])))
         ORDER BY table_id, row_key
           FOR UPDATE) mine
 WHERE q.table_id = mine.table_id AND q.row_key = mine.row_key;

-- name: complete
-- Record what happened to claimed entries, per entry: outcome 'done', 'retry', 'failed' or
-- 'wait' (see the table above); the error, the delay, the item id learnt and whether a create
-- may have happened. $1 is the listener: an entry whose lease was taken over is left to its
-- new holder. An entry whose version moved on since its claim has new data: it stays pending.
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

-- name: retry
-- Put the failed entries of table $1 (only those with the keys $2, when not null) back in the
-- queue: due now, with a fresh set of attempts and no lease. The version goes up, as for new
-- data: the retry is a new push, with a new Idempotency-Key (Monday would answer the old one
-- from its replay cache, with the old failure, for 30 minutes). last_error stays, for the
-- record, until the next attempt replaces it. Returns the keys.
WITH picked AS (
    SELECT table_id, row_key FROM npd_sync.queue
     WHERE table_id = $1 AND state = 'failed'
       AND ($2::text[] IS NULL OR row_key = ANY ($2::text[]))
     ORDER BY table_id, row_key
       FOR UPDATE
)
UPDATE npd_sync.queue q
   SET state = 'pending', attempts = 0, claims = 0, next_attempt_at = now(),
       lease_until = NULL, leased_by = NULL, version = q.version + 1
  FROM picked
 WHERE q.table_id = picked.table_id AND q.row_key = picked.row_key
RETURNING q.row_key;

-- name: discard
-- Take the failed entries of table $1 (only those with the keys $2, when not null) out of the
-- queue: an operator stops retrying them. Only failed entries: one that is pending or in
-- flight has new data or an attempt under way, and stays. The row waits for new data, which
-- arrives as for any row. Returns the keys.
WITH picked AS (
    SELECT table_id, row_key FROM npd_sync.queue
     WHERE table_id = $1 AND state = 'failed'
       AND ($2::text[] IS NULL OR row_key = ANY ($2::text[]))
     ORDER BY table_id, row_key
       FOR UPDATE
)
DELETE FROM npd_sync.queue q
 USING picked
 WHERE q.table_id = picked.table_id AND q.row_key = picked.row_key
RETURNING q.row_key;

-- name: pending_work
-- Whether anything is waiting: change records not yet taken in, inbox entries due (items
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

-- name: backlog_left
-- Entries of the tables $1 still pending, and in how many seconds the next one is due.
SELECT count(*) AS pending,
       extract(epoch FROM min(next_attempt_at) - now())::float8 AS due_in
  FROM npd_sync.queue
 WHERE table_id = ANY ($1::int2[]) AND state = 'pending';

-- name: depth
-- Rows waiting per table and state, for the metrics (change records not yet taken in count as
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
