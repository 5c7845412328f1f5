-- Per-table statements of the listener. Templates: {table}, {key} and the column lists are
-- filled with quoted identifiers, {key_type} and friends with format_type() text from the
-- catalog; values always travel as bind parameters.

-- name: load_rows
-- The rows with keys $1 of table $2, every mapped value as text (c0, c1, ... in mapping
-- order), with their link: the item and the values both sides last agreed on (npd_sync.links),
-- the columns with an open conflict, and per connect-boards column (r0, r1, ...: see
-- relation_refs) the rows its foreign key references.
SELECT t.{key}::text AS key, t.sync_enabled AS enabled, t.sync_direction::text AS direction,
       t.monday_id::text AS monday_id, t.{status}::text AS status,
       l.item_id AS linked_item, l.agreed::text AS agreed, l.unlinked_at IS NOT NULL AS unlinked,
       ARRAY(SELECT c.column_id FROM npd_sync.conflicts c
              WHERE c.table_id = $2 AND c.row_key = t.{key}::text AND c.state = 'open')
           AS conflicted{columns}{relations}
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
-- How many rows a backfill pushes ($1: also those SYNCED already); of them, how many have no
-- item yet (created, not updated), and how many with an item receive the board's edits (read
-- first when inbound is on).
SELECT count(*) AS rows, count(*) FILTER (WHERE t.monday_id IS NULL) AS creates,
       count(*) FILTER (WHERE t.monday_id IS NOT NULL
                          AND t.sync_direction::text = 'BIDIRECTIONAL') AS receiving
  FROM {table} t
 WHERE t.sync_enabled
   AND t.sync_direction::text IN ('BIDIRECTIONAL', 'NPD_TO_MONDAY')
   AND ($1 OR t.monday_id IS NULL OR t.sync_status::text IS DISTINCT FROM 'SYNCED');

-- name: pull_write
-- Write the board's values into row $1: {assignments} sets each column that flows back to
-- its parameter when that column's flag parameter is true (values as text, cast to the
-- column's type). The listener's connection is never captured: no echo to Monday.
UPDATE {table} t SET {assignments}
 WHERE t.{key} = $1::text::{key_type};

-- name: pull_delete
-- Delete row $1, its item having been deleted on the board (on_monday_delete = delete);
-- a row the application holds locked is skipped, never waited for (none returned).
DELETE FROM {table} t
 WHERE t.{key} = (SELECT l.{key} FROM {table} l WHERE l.{key} = $1::text::{key_type}
                     FOR UPDATE SKIP LOCKED)
RETURNING 1;

-- name: pull_insert
-- A row for an item created on the board (on_monday_create = insert): the values of the
-- columns that flow back ({columns}, {values}: their parameters from $2), synced both ways,
-- linked to item $1. Returns the row's key, which the database gives it.
INSERT INTO {table} ({columns}, sync_enabled, sync_direction, monday_id, {status})
VALUES ({values}, true, 'BIDIRECTIONAL'::{direction_type}, $1::text::{monday_type},
        'SYNCED'::{status_type})
RETURNING {key}::text;

-- name: relation_refs
-- Template, one column of load_rows per connect-boards column: the rows the foreign key
-- {keys} (a text array) references in {ref_table} (table id {ref_id}), in order, as a JSON array
-- of [key, the item npd-sync linked it to or null, why it will never have one or null]: it is
-- not there, or it is not pushed (sync_enabled false, or a direction away from Monday).
(SELECT coalesce(jsonb_agg(jsonb_build_array(k.key, l.item_id,
            CASE WHEN l.item_id IS NOT NULL THEN NULL
                 WHEN r.{ref_key} IS NULL THEN 'missing'
                 WHEN r.sync_enabled IS TRUE
                      AND r.sync_direction::text IN ('BIDIRECTIONAL', 'NPD_TO_MONDAY') THEN NULL
                 ELSE 'not pushed' END) ORDER BY k.n), '[]')::text
   FROM unnest({keys}) WITH ORDINALITY AS k(key, n)
   LEFT JOIN npd_sync.links l
          ON l.table_id = {ref_id} AND l.row_key = k.key AND l.unlinked_at IS NULL
   LEFT JOIN {ref_table} r ON r.{ref_key} = k.key::{ref_key_type}
  WHERE k.key IS NOT NULL)
