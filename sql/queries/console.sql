-- What the console's failed rows and one row's story read (listener/operations/failed.py, story.py).

-- name: console_failed
-- Failed queue entries (of the table named $1, or every table when null; of the error group
-- $4, or every group when null: see console_failed_groups) with no newer change waiting,
-- newest error first: $2 of them from the $3-th on, with how many there are in all, and the
-- item each row is linked to where one is known.
SELECT t.name AS table_name, q.row_key, q.attempts, q.last_error::text AS last_error,
       q.last_error_at,
       q.changed_at, coalesce(l.item_id, q.monday_id) AS item_id, count(*) OVER () AS total
  FROM npd_sync.queue q
  JOIN npd_sync.tables t ON t.id = q.table_id
  LEFT JOIN npd_sync.links l ON l.table_id = q.table_id AND l.row_key = q.row_key
 WHERE q.state = 'failed' AND ($1::text IS NULL OR t.name = $1)
   AND NOT EXISTS (SELECT FROM npd_sync.changes c
                    WHERE c.table_id = q.table_id AND c.row_key = q.row_key)
   AND ($4::text IS NULL
        OR left(md5(concat_ws(E'\x1f', coalesce(q.last_error ->> 'source', ''),
                              coalesce(q.last_error ->> 'code', ''),
                              coalesce(q.last_error ->> 'message', ''))), 12) = $4)
 ORDER BY q.last_error_at DESC NULLS LAST, t.name, q.row_key
 LIMIT $2 OFFSET $3;

-- name: console_failed_groups
-- The same failed entries (of the table named $1, or every table) grouped by their error: who
-- said it, its code and its message, the most rows first, at most $2 groups; each with its id
-- (the first 12 hex digits of the md5 of the three, as console_failed filters by), how many
-- rows, the tables they are in, the newest, and how many groups there are in all.
SELECT left(md5(concat_ws(E'\x1f', source, code, message)), 12) AS id, source,
       nullif(code, '') AS code, message, n, tables, latest, count(*) OVER () AS groups
  FROM (SELECT coalesce(q.last_error ->> 'source', '') AS source,
               coalesce(q.last_error ->> 'code', '') AS code,
               coalesce(q.last_error ->> 'message', '') AS message,
               count(*) AS n, array_agg(DISTINCT t.name ORDER BY t.name) AS tables,
               max(q.last_error_at) AS latest
          FROM npd_sync.queue q
          JOIN npd_sync.tables t ON t.id = q.table_id
         WHERE q.state = 'failed' AND ($1::text IS NULL OR t.name = $1)
           AND NOT EXISTS (SELECT FROM npd_sync.changes c
                            WHERE c.table_id = q.table_id AND c.row_key = q.row_key)
         GROUP BY 1, 2, 3) g
 ORDER BY n DESC, latest DESC NULLS LAST, id
 LIMIT $2;

-- name: console_entry
-- The queue entry of row $2 of the table named $1, if it has one, with whether it is leased
-- now and the change records not taken into the queue yet.
SELECT q.state, q.version, q.attempts, q.claims, q.uncertain, q.changed_at, q.next_attempt_at,
       q.lease_until, q.leased_by, q.lease_until > now() AS in_flight,
       q.last_error::text AS last_error, q.last_error_at, q.monday_id, q.archive_ids
  FROM npd_sync.queue q JOIN npd_sync.tables t ON t.id = q.table_id
 WHERE t.name = $1 AND q.row_key = $2;

-- name: console_changes
-- Change records of row $2 of the table named $1 that no listener has taken in yet.
SELECT count(*) AS n, min(c.changed_at) AS oldest
  FROM npd_sync.changes c JOIN npd_sync.tables t ON t.id = c.table_id
 WHERE t.name = $1 AND c.row_key = $2;

-- name: console_link
-- The item row $2 of the table named $1 is linked to, and the values both sides agreed on.
SELECT l.item_id, l.agreed::text AS agreed, l.agreed_at
  FROM npd_sync.links l JOIN npd_sync.tables t ON t.id = l.table_id
 WHERE t.name = $1 AND l.row_key = $2;

-- name: console_find_item
-- Which row Monday item $1 belongs to, as npd-sync's own records say (a link, or an item id
-- learnt and not yet written back).
SELECT t.name AS table_name, x.row_key
  FROM (SELECT table_id, row_key, 1 AS rank FROM npd_sync.links WHERE item_id = $1
        UNION ALL
        SELECT table_id, row_key, 2 FROM npd_sync.queue WHERE monday_id = $1) x
  JOIN npd_sync.tables t ON t.id = x.table_id
 ORDER BY x.rank
 LIMIT 1;

-- name: console_row
-- Template: the row of {table} whose key is $1, its key and sync columns as text ({columns}:
-- the ones the table has, each `, t."column"::text AS "column"`).
SELECT t.{key}::text AS key{columns} FROM {table} t WHERE t.{key} = $1::text::{key_type};

-- name: console_row_by_item
-- Template: the key of the row of {table} whose monday_id is $1 (rows linked before npd-sync
-- kept links).
SELECT t.{key}::text FROM {table} t WHERE t.monday_id::text = $1 LIMIT 1;

-- name: search_item
-- The rows Monday item $1 belongs to, as npd-sync's own records say (a link, or an item id
-- learnt and not written back), with their table's name.
SELECT DISTINCT t.name AS table_name, x.row_key
  FROM (SELECT table_id, row_key FROM npd_sync.links WHERE item_id = $1
        UNION ALL
        SELECT table_id, row_key FROM npd_sync.queue WHERE monday_id = $1) x
  JOIN npd_sync.tables t ON t.id = x.table_id;

-- name: search_rows
-- Template: up to $2 rows of {table} (table id $3) that {match} (a condition on quoted columns
-- of `t` and $1, made by listener/operations/search.py), each with its key, the columns of its
-- item name ({names}: `, t."column"::text AS n0`...), its status and its item. No ORDER BY: a
-- scan stops at the $2-th row found.
SELECT t.{key}::text AS key, t.{status}::text AS status,
       coalesce(l.item_id, t.{monday_id}::text) AS item_id{names}
  FROM {table} t
  LEFT JOIN npd_sync.links l ON l.table_id = $3 AND l.row_key = t.{key}::text
 WHERE {match}
 LIMIT $2;

-- name: console_linked_from
-- Template: a page of the rows of {table} (table id $4) whose foreign key holds key $1 ({match}:
-- `t."fk" = $1::text::type`, or `$1::text::type = ANY (t."fk")` for an array of keys), by
-- key: $2 of them from the $3-th on, each with its item, and how many there are in all.
SELECT t.{key}::text AS key, coalesce(l.item_id, t.{monday_id}::text) AS item_id,
       count(*) OVER () AS total
  FROM {table} t
  LEFT JOIN npd_sync.links l
         ON l.table_id = $4 AND l.row_key = t.{key}::text AND l.unlinked_at IS NULL
 WHERE {match}
 ORDER BY t.{key}
 LIMIT $2 OFFSET $3;

-- name: console_items_rows
-- The rows the Monday items $1 are linked to, as npd-sync's links say, with their table's name.
SELECT l.item_id, t.name AS table_name, l.row_key
  FROM npd_sync.links l JOIN npd_sync.tables t ON t.id = l.table_id
 WHERE l.item_id = ANY ($1::text[]);
