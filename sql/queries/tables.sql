-- Per-table statements of the listener. Templates: {table}, {key} and the column lists are
-- filled with quoted identifiers, {key_type} and friends with format_type() text from the
-- catalog; values always travel as bind parameters.

-- name: load_rows
-- The rows with keys $1 of table $2, every mapped value as text (c0, c1, ... in mapping
-- order), with their link: the item and the values both sides last agreed on (npd_sync.links).
SELECT t.{key}::text AS key, t.sync_enabled AS enabled, t.sync_direction::text AS direction,
       t.monday_id::text AS monday_id, t.{status}::text AS status,
       l.item_id AS linked_item, l.agreed::text AS agreed{columns}
  FROM {table} t
  LEFT JOIN npd_sync.links l ON l.table_id = $2 AND l.row_key = t.{key}::text
 WHERE t.{key} = ANY ($1::text[]::{key_type}[]);

-- name: write_back
-- Write monday_id and sync_status (and sync_error, last_synced_at where present) to rows $1.
-- Rows the application holds locked are skipped, never waited for: the listener retries them.
WITH v AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
        AS v(row_key, monday_id, status, error)
), locked AS (
    SELECT t.{key} AS row_key FROM {table} t
     WHERE t.{key} = ANY ($1::text[]::{key_type}[])
       FOR UPDATE SKIP LOCKED
)
UPDATE {table} t
   SET monday_id = v.monday_id::{monday_type}, sync_status = v.status::{status_type}{extra}
  FROM v JOIN locked l ON l.row_key = v.row_key::{key_type}
 WHERE t.{key} = l.row_key
RETURNING t.{key}::text;

-- name: backlog_keys
-- Up to $2 keys, after $1 (from the first when $1 is null), of rows a backfill pushes:
-- syncable and, unless $3, not SYNCED yet. In key order, for keyset pagination.
SELECT t.{key}::text FROM {table} t
 WHERE ($1::text IS NULL OR t.{key} > $1::text::{key_type})
   AND t.sync_enabled
   AND t.sync_direction::text IN ('BIDIRECTIONAL', 'NPD_TO_MONDAY')
   AND ($3 OR t.monday_id IS NULL OR t.sync_status::text IS DISTINCT FROM 'SYNCED')
 ORDER BY t.{key}
 LIMIT $2;

-- name: backlog
-- How many rows a backfill pushes ($1: also those SYNCED already).
SELECT count(*) FROM {table} t
 WHERE t.sync_enabled
   AND t.sync_direction::text IN ('BIDIRECTIONAL', 'NPD_TO_MONDAY')
   AND ($1 OR t.monday_id IS NULL OR t.sync_status::text IS DISTINCT FROM 'SYNCED');
