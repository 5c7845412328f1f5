-- The capture's bookkeeping: installed schema and tables, triggers, and the wake-up
-- protocol (see listener/capture/notify.py).

-- name: schema_present
-- Whether npd-sync's schema is installed here at all.
SELECT pg_catalog.to_regclass('npd_sync.migrations') IS NOT NULL
   AND pg_catalog.to_regclass('npd_sync.tables') IS NOT NULL;

-- name: schema_version
-- The latest migration applied (0 when none).
SELECT coalesce(max(version), 0) FROM npd_sync.migrations;

-- name: attached_tables
-- Tables with capture installed, by id.
SELECT id, name, relation::text AS relation, key_column::text AS key_column, ddl_hash
  FROM npd_sync.tables ORDER BY id;

-- name: enabled_triggers
-- How many of npd-sync's triggers on the table $1 exist and are enabled (all five: capture is
-- whole).
SELECT count(*) FROM pg_catalog.pg_trigger
 WHERE tgrelid = $1::regclass AND tgname::text LIKE 'npd\_sync\_%' AND tgenabled IN ('O', 'A');

-- name: capture_triggers
-- npd-sync's triggers on the table $1 (regclass text): whether each fires for ordinary
-- sessions, and the columns an UPDATE OF trigger watches.
SELECT t.tgname::text AS name, t.tgenabled IN ('O', 'A') AS enabled,
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a
              WHERE a.attrelid = t.tgrelid AND a.attnum = ANY (t.tgattr::int2[])
              ORDER BY a.attnum) AS columns
  FROM pg_catalog.pg_trigger t
 WHERE t.tgrelid = pg_catalog.to_regclass($1) AND NOT t.tgisinternal
   AND t.tgname::text LIKE 'npd\_sync\_%'
 ORDER BY t.tgname;

-- name: table_id
-- The id npd-sync's capture gives the configured table $1, or no row when it has none.
SELECT id FROM npd_sync.tables WHERE name = $1;

-- name: arm
-- Ask writers to NOTIFY from now on (see listener/capture/notify.py).
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

-- name: wake
-- Wake an idle listener now rather than at its next poll (channel $1; NOTIFY only wakes).
SELECT pg_catalog.pg_notify($1, '');

-- name: mark_session
-- Mark this session as npd-sync's own: the capture triggers skip it (see listener/db.py). The
-- secret is read and set here, server-side. Nothing to do before npd-sync is installed; a
-- role that may not read the secret stays unmarked, its writes captured like any other.
DO $mark$
BEGIN
    IF pg_catalog.to_regclass('npd_sync.origin') IS NOT NULL THEN
        PERFORM pg_catalog.set_config('npd_sync.origin', secret, false) FROM npd_sync.origin;
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    NULL;
END
$mark$;

-- name: origin_secret
-- The secret that marks npd-sync's own sessions (install puts its digest into the triggers).
SELECT secret FROM npd_sync.origin;

-- name: take_changes
-- Take up to $1 change records out of the log (npd_sync.changes: what the triggers recorded),
-- folded to one per row: when it first and last changed, the items of its deleted keys. SKIP
-- LOCKED lets several listeners take at once; application inserts never wait on it. A record
-- that can never be synced (its table is not captured, its key is longer than $2 bytes, more
-- than a queue entry holds) goes to npd_sync.rejected instead, with the reason, and comes back
-- with its key cut short and the reason. `records`: how many records each returned row stands
-- for. To be run in the transaction that queues what it returns.
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
)
SELECT table_id, row_key, min(changed_at) AS changed_at, max(changed_at) AS last_changed_at,
       coalesce(array_agg(DISTINCT archive_id) FILTER (WHERE archive_id IS NOT NULL), '{}')
           AS archive_ids,
       count(*)::int AS records, NULL::text AS reason
  FROM judged WHERE reason IS NULL GROUP BY table_id, row_key
UNION ALL
SELECT table_id, left(row_key, 40), NULL, NULL, NULL, 1, reason FROM rejected;

-- name: install_lock_holder
-- Who holds install's advisory lock $1 in this database (another session): its pid, user and
-- application name.
SELECT a.pid, a.usename, a.application_name
  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'advisory' AND l.granted AND l.pid <> pg_backend_pid()
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
   AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid
   AND l.objsubid = 1
 LIMIT 1;
