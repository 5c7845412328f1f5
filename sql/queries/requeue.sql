-- `npd-sync retry`: failed rows back in the queue. {table}, {key}, {status} are
-- quoted identifiers, {key_type} and {status_type} format_type() text from the catalog.

-- name: normalize_keys
-- Template: the keys $1 as the table's key type prints them (an invalid key raises).
SELECT k::{key_type}::text FROM unnest($1::text[]) AS k;

-- name: requeue_failed
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

-- name: requeue_orphans
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
