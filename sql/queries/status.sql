-- The status report: `npd-sync status` and the console's overview (listener/operations/report.py).

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
       q.last_error::text AS last_error, q.last_error_at, q.lease_until > now() AS in_flight
  FROM npd_sync.queue q LEFT JOIN npd_sync.tables t ON t.id = q.table_id
 WHERE q.last_error IS NOT NULL
 ORDER BY q.last_error_at DESC NULLS LAST, q.table_id, q.row_key
 LIMIT $1;

-- name: status_monday
-- Monday's account-wide state as the listeners last recorded it.
SELECT m.paused_until, m.pause_reason, coalesce(m.paused_until > now(), false) AS paused,
       l.reported - l.in_flight AS complexity_remaining, l.reset_at AS complexity_reset_at,
       greatest(m.updated_at, l.updated_at) AS updated_at
  FROM npd_sync.monday m LEFT JOIN npd_sync.monday_limits l ON l.name = 'complexity';

-- name: count_synced
-- Template: how many rows of the table say SYNCED (a table without the key or monday_id
-- column: `count_synced_unlinked` cannot tell the unlinked ones apart).
SELECT count(*) AS synced, 0::bigint AS unlinked FROM {table} WHERE {status}::text = 'SYNCED';

-- name: count_synced_unlinked
-- Template: how many rows of the table (id $1) are in sync, and how many say SYNCED but are
-- unlinked: their item was archived or deleted on Monday, so they are in sync with nothing.
-- An unlinked row has no monday_id: only those rows are looked up among the unlinked links
-- (a hashed subplan, built once).
SELECT count(*) FILTER (WHERE NOT s.unlinked) AS synced,
       count(*) FILTER (WHERE s.unlinked) AS unlinked
  FROM (SELECT CASE WHEN t.{monday_id} IS NULL
                    THEN t.{key}::text IN (SELECT u.row_key FROM npd_sync.links u
                                            WHERE u.table_id = $1 AND u.unlinked_at IS NOT NULL)
                    ELSE false END AS unlinked
          FROM {table} t
         WHERE t.{status}::text = 'SYNCED') AS s;

-- name: status_inbound
-- Inbound's state: the last delivery received, the items waiting (inbox entries, and rows
-- queued to read their item) and since when (open conflicts: `open_conflict_counts`).
SELECT (SELECT max(received_at) FROM npd_sync.events) AS last_webhook_at,
       (SELECT count(*) FROM npd_sync.inbox WHERE state = 'pending')
       + (SELECT count(*) FROM npd_sync.queue WHERE pull AND state = 'pending') AS pending,
       (SELECT min(t) FROM (SELECT min(changed_at) FROM npd_sync.inbox WHERE state = 'pending'
                            UNION ALL
                            SELECT min(changed_at) FROM npd_sync.queue
                             WHERE pull AND state = 'pending') AS s(t)) AS oldest_pending,
       (SELECT count(*) FROM npd_sync.webhooks) AS webhooks;

-- name: open_conflict_counts
-- Open conflicts per table: how many (a conflict is one field of one row) and in how many rows.
SELECT t.name, count(*) AS conflicts, count(DISTINCT c.row_key) AS rows
  FROM npd_sync.conflicts c JOIN npd_sync.tables t ON t.id = c.table_id
 WHERE c.state = 'open'
 GROUP BY t.name;

-- name: status_rejected
-- The latest $1 change records set aside at ingest, newest first, with their table's name.
SELECT coalesce(t.name, '#' || r.table_id) AS table_name, r.row_key, r.reason, r.rejected_at
  FROM npd_sync.rejected r LEFT JOIN npd_sync.tables t ON t.id = r.table_id
 ORDER BY r.rejected_at DESC, r.table_id, r.row_key
 LIMIT $1;

-- name: count_rejected
-- How many change records were set aside at ingest.
SELECT count(*) FROM npd_sync.rejected;
