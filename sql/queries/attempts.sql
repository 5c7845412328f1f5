-- Each row's attempts (npd_sync.attempts, see listener/attempts.py).

-- name: record_attempts
-- What listener $1's batch did for its entries, one per element of the arrays: table, key,
-- outcome, action, item, what it sent (JSON text), its fault (JSON text), Monday's request id.
INSERT INTO npd_sync.attempts
       (listener_id, table_id, row_key, outcome, action, item_id, sent, error, request_id)
SELECT $1, v.table_id, v.row_key, v.outcome, v.action, v.item_id, v.sent::jsonb,
       v.error::jsonb, v.request_id
  FROM unnest($2::int2[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
              $8::text[], $9::text[])
       AS v(table_id, row_key, outcome, action, item_id, sent, error, request_id);

-- name: forget_attempts
-- Attempts older than $1 days.
DELETE FROM npd_sync.attempts WHERE at < now() - make_interval(days => $1);

-- name: row_attempts
-- The latest $3 attempts of row $2 of table $1, newest first.
SELECT at, outcome, action, item_id, sent::text AS sent, error::text AS error, request_id,
       listener_id
  FROM npd_sync.attempts
 WHERE table_id = $1 AND row_key = $2
 ORDER BY at DESC, id DESC
 LIMIT $3;
