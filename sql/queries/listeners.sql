-- Running listeners and their heartbeats.

-- name: heartbeat
-- Record that listener $1 is alive, what it finds wrong with itself ($5, NULL: nothing), and
-- that it last synced or failed an entry $6 seconds ago.
INSERT INTO npd_sync.listeners AS l (id, hostname, pid, version, problem, finished_at)
VALUES ($1, $2, $3, $4, $5, now() - make_interval(secs => $6))
ON CONFLICT (id) DO UPDATE SET
    seen_at = now(), problem = excluded.problem, finished_at = excluded.finished_at;

-- name: forget_listener
-- A listener leaving cleanly.
DELETE FROM npd_sync.listeners WHERE id = $1;

-- name: status_listeners
-- The listeners' heartbeat rows: alive when seen within the last $1 seconds.
SELECT id, hostname, pid, version, started_at, seen_at, problem,
       extract(epoch FROM now() - seen_at)::float8 AS seen_ago,
       seen_at > now() - make_interval(secs => $1) AS alive
  FROM npd_sync.listeners
 ORDER BY started_at, id;
