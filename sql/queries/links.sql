-- The links between rows and their items, and the values both sides last agreed on
-- (npd_sync.links, see listener/links.py).

-- name: unlink_moved
-- Forget links to the items $3 held by rows of table $1 other than $2 (an item adopted by a
-- row after a key change, say): an item is linked to one row.
DELETE FROM npd_sync.links
 WHERE item_id = ANY ($3::text[])
   AND NOT (table_id = $1 AND row_key = ANY ($2::text[]));

-- name: link_items
-- Record that the rows $2 of table $1 are linked to the items $3, Monday having accepted the
-- values $4 (JSON objects, column id -> value) for them: merged over what was agreed before
-- for the same item, replacing it for a new one.
INSERT INTO npd_sync.links AS l (table_id, row_key, item_id, agreed)
SELECT $1, v.row_key, v.item_id, v.agreed::jsonb
  FROM unnest($2::text[], $3::text[], $4::text[]) AS v(row_key, item_id, agreed)
 ORDER BY v.row_key
ON CONFLICT (table_id, row_key) DO UPDATE SET
    item_id = excluded.item_id,
    agreed = CASE WHEN l.item_id = excluded.item_id THEN l.agreed || excluded.agreed
                  ELSE excluded.agreed END,
    agreed_at = now(),
    unlinked_at = NULL;

-- name: unlink_items
-- Forget the links to the items $1 (archived or deleted).
DELETE FROM npd_sync.links WHERE item_id = ANY ($1::text[]);

-- name: mark_unlinked
-- Row $2 of table $1 no longer has its item (archived or deleted on Monday): keep the link
-- for a restore, marked.
UPDATE npd_sync.links SET unlinked_at = now() WHERE table_id = $1 AND row_key = $2;

-- name: drop_link
-- Forget row $2 of table $1's link (the row is gone).
DELETE FROM npd_sync.links WHERE table_id = $1 AND row_key = $2;

-- name: linked_rows
-- The rows the items $1 are linked to (an item is linked to one row at most).
SELECT item_id, table_id, row_key FROM npd_sync.links WHERE item_id = ANY ($1::text[]);

-- name: rebase_link
-- The values $3 (a JSON object, column id -> value) become the agreed ones of row $2 of table
-- $1's link, for those columns (a resolved conflict: the losing side's value).
UPDATE npd_sync.links SET agreed = agreed || $3::jsonb WHERE table_id = $1 AND row_key = $2;
