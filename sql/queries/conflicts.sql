-- Conflicts: a field changed on both sides since they last agreed (npd_sync.conflicts, see
-- listener/inbound/conflicts.py). Values are JSON in the form npd-sync sends to Monday.

-- name: record_conflicts
-- Record the conflicts found on row $2 of table $1 (item $3): per column $4, the agreed,
-- database and Monday values $5-$7 (JSON text), the winner $8 (null: open, for someone to
-- resolve), the policy $9, and when each side changed, $10 and $11. A column with an open
-- conflict already keeps the first one.
INSERT INTO npd_sync.conflicts AS c
       (table_id, row_key, item_id, column_id, agreed_value, npd_value, monday_value, winner,
        state, policy, resolved_by, resolved_at, npd_changed_at, monday_changed_at)
SELECT $1, $2, $3, v.column_id, v.agreed::jsonb, v.npd::jsonb, v.monday::jsonb, v.winner,
       CASE WHEN v.winner IS NULL THEN 'open' ELSE 'resolved' END, $9,
       CASE WHEN v.winner IS NULL THEN NULL ELSE 'policy' END,
       CASE WHEN v.winner IS NULL THEN NULL ELSE now() END, $10, $11
  FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[])
       AS v(column_id, agreed, npd, monday, winner)
ON CONFLICT (table_id, row_key, column_id) WHERE state = 'open' DO NOTHING;

-- name: settle_conflicts
-- The open conflicts on the columns $3 of row $2 of table $1 ended: both sides now hold the
-- same value.
UPDATE npd_sync.conflicts
   SET state = 'resolved', resolved_at = now(), resolved_by = 'converged'
 WHERE table_id = $1 AND row_key = $2 AND column_id = ANY ($3::text[]) AND state = 'open';

-- name: list_conflicts
-- Conflicts, oldest first: the open ones, or all when $1; of the table named $2 when not null.
SELECT c.id, t.name AS table_name, c.table_id, c.row_key, c.column_id, c.item_id,
       c.agreed_value::text AS agreed_value, c.npd_value::text AS npd_value,
       c.monday_value::text AS monday_value, c.state, c.winner, c.policy, c.resolved_by,
       c.detected_at, c.resolved_at
  FROM npd_sync.conflicts c JOIN npd_sync.tables t ON t.id = c.table_id
 WHERE ($1 OR c.state = 'open') AND ($2::text IS NULL OR t.name = $2)
 ORDER BY c.detected_at, c.id;

-- name: open_conflicts_by_row
-- A page of the rows with open conflicts (of the table named $1, and of row $2, when not
-- null), the row whose oldest conflict is oldest first: $3 rows from the $4-th on, each with
-- every open conflict it has, how many such rows there are in all, and how many open
-- conflicts they have.
WITH picked AS (
    SELECT c.table_id, c.row_key, min(c.detected_at) AS first, count(*) OVER () AS total,
           sum(count(*)) OVER ()::bigint AS conflicts
      FROM npd_sync.conflicts c JOIN npd_sync.tables t ON t.id = c.table_id
     WHERE c.state = 'open' AND ($1::text IS NULL OR t.name = $1)
       AND ($2::text IS NULL OR c.row_key = $2)
     GROUP BY c.table_id, c.row_key
     ORDER BY first, c.table_id, c.row_key
     LIMIT $3 OFFSET $4
)
SELECT c.id, t.name AS table_name, c.table_id, c.row_key, c.column_id, c.item_id,
       c.agreed_value::text AS agreed_value, c.npd_value::text AS npd_value,
       c.monday_value::text AS monday_value, c.state, c.winner, c.policy, c.resolved_by,
       c.detected_at, c.resolved_at, p.total, p.conflicts
  FROM picked p
  JOIN npd_sync.conflicts c
    ON c.table_id = p.table_id AND c.row_key = p.row_key AND c.state = 'open'
  JOIN npd_sync.tables t ON t.id = c.table_id
 ORDER BY p.first, p.table_id, p.row_key, c.id;

-- name: resolved_conflicts
-- A page of resolved conflicts (of the table named $1, and of row $2, when not null), the
-- latest resolved first: $3 of them from the $4-th on, with how many there are in all.
SELECT c.id, t.name AS table_name, c.table_id, c.row_key, c.column_id, c.item_id,
       c.agreed_value::text AS agreed_value, c.npd_value::text AS npd_value,
       c.monday_value::text AS monday_value, c.state, c.winner, c.policy, c.resolved_by,
       c.detected_at, c.resolved_at, count(*) OVER () AS total
  FROM npd_sync.conflicts c JOIN npd_sync.tables t ON t.id = c.table_id
 WHERE c.state = 'resolved' AND ($1::text IS NULL OR t.name = $1)
   AND ($2::text IS NULL OR c.row_key = $2)
 ORDER BY c.resolved_at DESC, c.id DESC
 LIMIT $3 OFFSET $4;

-- name: resolve_conflicts
-- Settle the open conflicts of row $2 of table $1 (on the columns $3 only, when not null) in
-- favour of side $4 ('npd' or 'monday'). Returns each column settled with the losing side's
-- value (JSON text): the agreed value becomes it, so that only the winner differs from what
-- was agreed and the row's next sync writes the winner's value to the other side.
WITH picked AS (
    SELECT id, column_id, npd_value, monday_value FROM npd_sync.conflicts
     WHERE table_id = $1 AND row_key = $2 AND state = 'open'
       AND ($3::text[] IS NULL OR column_id = ANY ($3::text[]))
     ORDER BY id
       FOR UPDATE
)
UPDATE npd_sync.conflicts c
   SET state = 'resolved', winner = $4, resolved_by = 'operator', resolved_at = now()
  FROM picked p
 WHERE c.id = p.id
RETURNING p.column_id,
          (CASE WHEN $4 = 'npd' THEN p.monday_value ELSE p.npd_value END)::text AS base;
