-- `npd-sync retry`, on the application's rows (the queue's entries go back through
-- listener/engine/queue.py). {table}, {key}, {status} are quoted identifiers, {key_type} and
-- {status_type} format_type() text from the catalog.

-- name: normalize_keys
-- Template: the keys $1 as the table's key type prints them (an invalid key raises).
SELECT k::{key_type}::text FROM unnest($1::text[]) AS k;

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
