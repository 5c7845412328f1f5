-- Relations between rows (connect-boards columns; see listener/relations.py).

-- name: await_items
-- The rows ($1 table ids, $2 keys) wait for the referenced rows ($3 table ids, $4 keys) to
-- have their items.
INSERT INTO npd_sync.awaited (table_id, row_key, ref_table_id, ref_key)
SELECT * FROM unnest($1::int2[], $2::text[], $3::int2[], $4::text[])
 ORDER BY 3, 4, 1, 2
ON CONFLICT DO NOTHING;

-- name: items_came
-- The rows ($1 table ids, $2 keys) have their items now: the rows that waited for them, no
-- longer waiting.
DELETE FROM npd_sync.awaited a
 USING unnest($1::int2[], $2::text[]) AS v(table_id, row_key)
 WHERE a.ref_table_id = v.table_id AND a.ref_key = v.row_key
RETURNING a.table_id, a.row_key;

-- name: linking_items
-- The rows of table $1 whose link agrees that connect-boards column $2 links one of the
-- items $3 (as Monday last accepted it).
SELECT l.row_key FROM npd_sync.links l
 WHERE l.table_id = $1
   AND EXISTS (SELECT FROM jsonb_array_elements_text(l.agreed -> $2 -> 'item_ids') AS e(item)
                WHERE e.item = ANY ($3::text[]));
