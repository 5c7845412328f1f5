-- Named queries and per-table templates of the operator commands: status, retry, check.
-- Loaded by listener/sql.py (`sql.command(name)`). In templates, {table}, {key} and {status}
-- are filled with quoted identifiers and {key_type}, {status_type} with format_type() text
-- from the catalog; values always travel as bind parameters.

-- name: schema_present
-- Whether npd-sync's schema is installed here at all.
SELECT pg_catalog.to_regclass('npd_sync.migrations') IS NOT NULL
   AND pg_catalog.to_regclass('npd_sync.tables') IS NOT NULL;

-- name: schema_version
-- The latest migration applied (0 when none).
SELECT coalesce(max(version), 0) FROM npd_sync.migrations;

-- name: status_counts
-- Per captured table, every row with work outstanding counted once, in one state: in flight
-- (leased, lease not expired), failed (and no newer change waiting), or pending (due or
-- waiting for a retry, or only recorded by a trigger and not ingested yet); and the oldest
-- change among the pending ones (queue entries and un-ingested change records).
WITH fresh AS (
    SELECT table_id, row_key, min(changed_at) AS changed_at
      FROM npd_sync.changes GROUP BY table_id, row_key
), entries AS (
    SELECT table_id,
           CASE WHEN q.lease_until > now() THEN 'in_flight'
                WHEN q.state = 'failed' AND f.row_key IS NULL THEN 'failed'
                ELSE 'pending' END AS state,
           CASE WHEN q.state = 'pending' AND NOT coalesce(q.lease_until > now(), false)
                THEN least(q.changed_at, f.changed_at)
                ELSE f.changed_at END AS pending_since
      FROM npd_sync.queue q FULL JOIN fresh f USING (table_id, row_key)
)
SELECT t.id, t.name,
       count(e.state) FILTER (WHERE e.state = 'pending') AS pending,
       count(e.state) FILTER (WHERE e.state = 'in_flight') AS in_flight,
       count(e.state) FILTER (WHERE e.state = 'failed') AS failed,
       min(e.pending_since) AS oldest_pending,
       extract(epoch FROM now() - min(e.pending_since))::float8 AS oldest_pending_age
  FROM npd_sync.tables t LEFT JOIN entries e ON e.table_id = t.id
 GROUP BY t.id, t.name
 ORDER BY t.id;

-- name: status_errors
-- The latest $1 errors recorded on queue entries, newest first, with their table's name.
SELECT coalesce(t.name, '#' || q.table_id) AS table_name, q.row_key, q.state, q.attempts,
       q.last_error, q.last_error_at, q.lease_until > now() AS in_flight
  FROM npd_sync.queue q LEFT JOIN npd_sync.tables t ON t.id = q.table_id
 WHERE q.last_error IS NOT NULL
 ORDER BY q.last_error_at DESC NULLS LAST, q.table_id, q.row_key
 LIMIT $1;

-- name: status_listeners
-- The listeners' heartbeat rows: alive when seen within the last $1 seconds.
SELECT id, hostname, pid, version, started_at, seen_at,
       extract(epoch FROM now() - seen_at)::float8 AS seen_ago,
       seen_at > now() - make_interval(secs => $1) AS alive
  FROM npd_sync.listeners
 ORDER BY started_at, id;

-- name: status_monday
-- Monday's account-wide state as the listeners last recorded it.
SELECT paused_until, pause_reason, coalesce(paused_until > now(), false) AS paused,
       complexity_remaining, complexity_reset_at, updated_at
  FROM npd_sync.monday;

-- name: database_now
-- The database's clock: ages are measured against it, never against this machine's.
SELECT now();

-- name: count_synced
-- Template: how many rows of the table are in sync.
SELECT count(*) FROM {table} WHERE {status}::text = 'SYNCED';

-- name: table_id
-- The id npd-sync's capture gives the configured table $1, or no row when it has none.
SELECT id FROM npd_sync.tables WHERE name = $1;

-- name: normalize_keys
-- Template: the keys $1 as the table's key type prints them (an invalid key raises).
SELECT k::{key_type}::text FROM unnest($1::text[]) AS k;

-- name: retry_failed
-- Put the failed entries of table $1 (only those with the keys $2, when not null) back in the
-- queue: due now, with a fresh set of attempts and no lease. The version goes up, as for a new
-- change: the retry is a new push, with a new Idempotency-Key (Monday would answer the old one
-- from its replay cache, with the old failure, for 30 minutes). last_error stays, for the
-- record, until the next attempt replaces it. Locks in key order, as every multi-entry
-- statement does.
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

-- name: failed_without_entry
-- Template: rows of table $1 marked FAILED that the queue knows nothing about (the queue was
-- dropped by an uninstall, say), that would be pushed; only the keys $2 when not null.
SELECT t.{key}::text FROM {table} t
 WHERE t.{status}::text = 'FAILED'
   AND ($2::text[] IS NULL OR t.{key} = ANY ($2::text[]::{key_type}[]))
   AND t.sync_enabled IS TRUE
   AND t.sync_direction::text IN ('BIDIRECTIONAL', 'NPD_TO_MONDAY')
   AND NOT EXISTS (SELECT FROM npd_sync.queue q
                    WHERE q.table_id = $1 AND q.row_key = t.{key}::text)
 ORDER BY t.{key};

-- name: enqueue
-- New queue entries for the rows $2 of table $1, due now; rows queued meanwhile are left alone.
INSERT INTO npd_sync.queue (table_id, row_key, changed_at, next_attempt_at)
SELECT $1::int2, k, now(), now() FROM unnest($2::text[]) AS k ORDER BY k
ON CONFLICT (table_id, row_key) DO NOTHING
RETURNING row_key;

-- name: mark_pending
-- Template: sync_status FAILED -> PENDING on the rows $1. Rows the application holds locked
-- are skipped, never waited for: the listener writes their status when it has pushed them.
WITH locked AS (
    SELECT t.{key} AS k FROM {table} t
     WHERE t.{key} = ANY ($1::text[]::{key_type}[]) AND t.{status}::text = 'FAILED'
     ORDER BY t.{key}
       FOR UPDATE SKIP LOCKED
)
UPDATE {table} t SET {status} = 'PENDING'::{status_type}
  FROM locked l
 WHERE t.{key} = l.k
RETURNING t.{key}::text;

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

-- name: server_version
-- The server's version, for check's first line.
SELECT pg_catalog.current_setting('server_version');

-- name: wake
-- Wake an idle listener now rather than at its next poll (channel $1; NOTIFY only wakes).
SELECT pg_catalog.pg_notify($1, '');
