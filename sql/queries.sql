-- Named queries of the listener and the commands. Loaded by listener/sql.py.

-- name: describe_table
-- The columns of a table given its quoted name; no row when there is no such table.
SELECT c.oid::regclass::text AS relation,
       a.attname::text AS name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       pg_catalog.format_type(b.oid, NULL) AS base,
       CASE WHEN b.typtype = 'e' THEN
           ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
                  WHERE e.enumtypid = b.oid ORDER BY e.enumsortorder)
       END AS labels,
       coalesce(a.attgenerated <> '', false) AS generated
  FROM pg_catalog.pg_class c
  LEFT JOIN pg_catalog.pg_attribute a
         ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_catalog.pg_type b ON b.oid = coalesce(nullif(t.typbasetype, 0), t.oid)
 WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind IN ('r', 'p')
 ORDER BY a.attnum;

-- name: attached_tables
-- Tables with capture installed, by id.
SELECT id, name, relation::text AS relation, key_column::text AS key_column, ddl_hash
  FROM npd_sync.tables ORDER BY id;

-- name: enabled_triggers
-- How many of npd-sync's triggers on the table $1 exist and are enabled (all five: capture is
-- whole).
SELECT count(*) FROM pg_catalog.pg_trigger
 WHERE tgrelid = $1::regclass AND tgname::text LIKE 'npd\_sync\_%' AND tgenabled IN ('O', 'A');

-- name: ingest
-- Move up to $1 change records into the queue, folding all changes of one row into one entry.
-- SKIP LOCKED lets several listeners ingest at once; application inserts never wait on it.
WITH taken AS (
    DELETE FROM npd_sync.changes
     WHERE ctid = ANY (ARRAY(SELECT ctid FROM npd_sync.changes LIMIT $1 FOR UPDATE SKIP LOCKED))
    RETURNING table_id, row_key, archive_id, changed_at
), folded AS (
    SELECT table_id, row_key, min(changed_at) AS changed_at,
           coalesce(array_agg(DISTINCT archive_id) FILTER (WHERE archive_id IS NOT NULL), '{}')
               AS archive_ids
      FROM taken GROUP BY table_id, row_key
), stored AS (
    INSERT INTO npd_sync.queue AS q (table_id, row_key, changed_at, archive_ids, next_attempt_at)
    -- Every statement that locks several queue entries locks them in key order: no deadlocks.
    SELECT table_id, row_key, changed_at, archive_ids, now() FROM folded
     ORDER BY table_id, row_key
    ON CONFLICT (table_id, row_key) DO UPDATE SET
        version = q.version + 1,
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
SELECT (SELECT count(*) FROM taken) AS records, (SELECT count(*) FROM stored) AS entries;

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
          q.archive_ids, q.changed_at;

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
                         $7::text[], $8::float8[], $9::text[], $10::bool[])
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
        claims = CASE WHEN NOT m.current AND m.outcome IN ('done', 'failed') THEN 0
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
-- Whether anything is waiting: change records not yet ingested, or queue entries of the
-- tables $1; and in how many seconds the next entry falls due (its retry time, or the end of
-- the lease another listener, or a batch that failed, holds it under).
SELECT EXISTS (SELECT FROM npd_sync.changes) AS changes,
       (SELECT extract(epoch FROM min(greatest(next_attempt_at, lease_until)) - now())::float8
          FROM npd_sync.queue
         WHERE state = 'pending' AND table_id = ANY ($1::int2[])) AS due_in;

-- name: arm
-- Ask writers to NOTIFY from now on (see listener/notify.py).
SELECT pg_catalog.setval('npd_sync.waiting', 1);

-- name: disarm
-- Writers may skip the NOTIFY: the listener is busy and will see their changes anyway.
SELECT pg_catalog.setval('npd_sync.waiting', 0);

-- name: writers
-- Transactions (other than ours) holding the change log's write lock, i.e. that may have
-- appended a change and not committed yet; only those among $1 when $1 is not null.
SELECT coalesce(array_agg(DISTINCT l.virtualtransaction), '{}')
  FROM pg_catalog.pg_locks l
 WHERE l.locktype = 'relation' AND l.relation = 'npd_sync.changes'::regclass
   AND l.mode = 'RowExclusiveLock' AND l.pid <> pg_catalog.pg_backend_pid()
   AND ($1::text[] IS NULL OR l.virtualtransaction = ANY ($1::text[]));

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

-- name: heartbeat
-- Record that listener $1 is alive.
INSERT INTO npd_sync.listeners (id, hostname, pid, version) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE SET seen_at = now();

-- name: forget_listener
-- A listener leaving cleanly.
DELETE FROM npd_sync.listeners WHERE id = $1;

-- name: reserve
-- Take up to $2 operations of $1 complexity points each, and one request, from the account's
-- budget, which every listener of this database shares: as many operations as the budget
-- holds. $3 and $4 are the per-minute complexity and request limits, used when a minute
-- starts. Returns how many operations were granted (0: none) and, if none, in how many
-- seconds some could be.
WITH s AS (
    SELECT m.*, now() AS t,
           m.complexity_reset_at IS NULL OR m.complexity_reset_at <= now() AS complexity_new,
           m.requests_reset_at IS NULL OR m.requests_reset_at <= now() AS requests_new
      FROM npd_sync.monday m
       FOR UPDATE
), g AS (
    SELECT s.*,
           CASE WHEN s.paused_until > s.t THEN 0
                WHEN NOT s.requests_new AND s.requests_remaining < 1 THEN 0
                ELSE least($2, floor(greatest(
                    CASE WHEN s.complexity_new THEN $3 ELSE s.complexity_remaining END, 0
                ) / $1))::int
           END AS ops
      FROM s
), taken AS (
    UPDATE npd_sync.monday m SET
        complexity_remaining =
            CASE WHEN g.complexity_new THEN $3 ELSE m.complexity_remaining END - g.ops * $1,
        complexity_reset_at =
            CASE WHEN g.complexity_new THEN g.t + interval '60 seconds'
                 ELSE m.complexity_reset_at END,
        requests_remaining = CASE WHEN g.requests_new THEN $4 ELSE m.requests_remaining END - 1,
        requests_reset_at =
            CASE WHEN g.requests_new THEN g.t + interval '60 seconds' ELSE m.requests_reset_at END,
        updated_at = g.t
      FROM g
     WHERE g.ops >= 1
    RETURNING 1
)
SELECT g.ops AS granted,
       extract(epoch FROM greatest(
           CASE WHEN g.paused_until > g.t THEN g.paused_until END,
           CASE WHEN g.ops < 1 AND NOT g.complexity_new THEN g.complexity_reset_at END,
           CASE WHEN NOT g.requests_new AND g.requests_remaining < 1 THEN g.requests_reset_at END
       ) - g.t)::float8 AS wait,
       g.pause_reason
  FROM g;

-- name: observe
-- Calibrate from Monday's own figures: complexity left and seconds to its reset ($1, $2), and
-- requests left this minute and seconds to that reset ($3, $4). NULL leaves a figure as it is.
UPDATE npd_sync.monday SET
    complexity_remaining = coalesce($1, complexity_remaining),
    complexity_reset_at = coalesce(now() + make_interval(secs => $2), complexity_reset_at),
    requests_remaining = coalesce($3, requests_remaining),
    requests_reset_at = coalesce(now() + make_interval(secs => $4), requests_reset_at),
    updated_at = now();

-- name: pause
-- Hold every listener's Monday traffic for $1 seconds because of $2 (a longer pause stays).
UPDATE npd_sync.monday SET
    pause_reason = CASE WHEN paused_until > now() + make_interval(secs => $1)
                        THEN pause_reason ELSE $2 END,
    paused_until = greatest(paused_until, now() + make_interval(secs => $1)),
    updated_at = now();

-- name: paused_for
-- Seconds left of the shared pause (0 when none), and why.
SELECT greatest(extract(epoch FROM paused_until - now()), 0)::float8 AS seconds, pause_reason
  FROM npd_sync.monday;
