-- Monday's account-wide budget and pause, shared by every listener
-- (see listener/monday/governor.py).

-- name: reserve
-- Take up to $2 operations of $1 complexity points each, and one request, from the account's
-- budget, which every listener of this database shares: as many operations as the budget
-- holds. $3 and $4 are the per-minute complexity and request limits, used when a minute
-- starts. Returns how many operations were granted (0: none) and, if none, in how many
-- seconds some could be.
WITH s AS (
    SELECT m.*, now() AS t,
           m.complexity_reset_at IS NULL OR m.complexity_reset_at <= now() AS complexity_new,
           m.requests_reset_at IS NULL OR m.requests_reset_at <= now() AS requests_new
      FROM npd_sync.monday m
       FOR UPDATE
), g AS (
    SELECT s.*,
           CASE WHEN s.paused_until > s.t THEN 0
                WHEN NOT s.requests_new AND s.requests_remaining < 1 THEN 0
                ELSE least($2, floor(greatest(
                    CASE WHEN s.complexity_new THEN $3 ELSE s.complexity_remaining END, 0
                ) / $1))::int
           END AS ops
      FROM s
), taken AS (
    UPDATE npd_sync.monday m SET
        complexity_remaining =
            CASE WHEN g.complexity_new THEN $3 ELSE m.complexity_remaining END - g.ops * $1,
        complexity_reset_at =
            CASE WHEN g.complexity_new THEN g.t + interval '60 seconds'
                 ELSE m.complexity_reset_at END,
        requests_remaining = CASE WHEN g.requests_new THEN $4 ELSE m.requests_remaining END - 1,
        requests_reset_at =
            CASE WHEN g.requests_new THEN g.t + interval '60 seconds' ELSE m.requests_reset_at END,
        updated_at = g.t
      FROM g
     WHERE g.ops >= 1
    RETURNING 1
)
SELECT g.ops AS granted,
       extract(epoch FROM greatest(
           CASE WHEN g.paused_until > g.t THEN g.paused_until END,
           CASE WHEN g.ops < 1 AND NOT g.complexity_new THEN g.complexity_reset_at END,
           CASE WHEN NOT g.requests_new AND g.requests_remaining < 1 THEN g.requests_reset_at END
       ) - g.t)::float8 AS wait,
       g.pause_reason
  FROM g;

-- name: observe
-- Calibrate from Monday's own figures: complexity left and seconds to its reset ($1, $2), and
-- requests left this minute and seconds to that reset ($3, $4). NULL leaves a figure as it is.
UPDATE npd_sync.monday SET
    complexity_remaining = coalesce($1, complexity_remaining),
    complexity_reset_at = coalesce(now() + make_interval(secs => $2), complexity_reset_at),
    requests_remaining = coalesce($3, requests_remaining),
    requests_reset_at = coalesce(now() + make_interval(secs => $4), requests_reset_at),
    updated_at = now();

-- name: pause
-- Hold every listener's Monday traffic for $1 seconds because of $2 (a longer pause stays).
UPDATE npd_sync.monday SET
    pause_reason = CASE WHEN paused_until > now() + make_interval(secs => $1)
                        THEN pause_reason ELSE $2 END,
    paused_until = greatest(paused_until, now() + make_interval(secs => $1)),
    updated_at = now();

-- name: paused_for
-- Seconds left of the shared pause (0 when none), and why.
SELECT greatest(extract(epoch FROM paused_until - now()), 0)::float8 AS seconds, pause_reason
  FROM npd_sync.monday;
