-- Monday's account-wide budget and pause, shared by every listener
-- (see listener/monday/governor.py).

-- name: reserve
-- Take from the account's budget, which every listener of this database shares, as many of
-- the operations asked for as it holds, and one request. $1 holds the operations' estimated
-- costs, summed (the first, the first two, ...); $2 and $3 are the budget a window and its
-- length to assume until Monday has reported them, $4 the requests a minute; $5: the first
-- operation's cost is a guess nothing has confirmed yet. A window that
-- has run out starts again in full; its end is a guess (a second late, to be safe) until a
-- reply says. Returns how many operations were granted (0: none) and their points, the
-- window they were taken from, and, if none was granted, in how many seconds some could be.
WITH s AS (
    SELECT m.*, now() AS t,
           m.complexity_reset_at IS NULL OR m.complexity_reset_at <= now() AS complexity_new,
           m.requests_reset_at IS NULL OR m.requests_reset_at <= now() AS requests_new,
           coalesce(m.complexity_limit, $2) AS budget
      FROM npd_sync.monday m
     WHERE m.id
       FOR UPDATE
), b AS (
    SELECT s.*,
           CASE WHEN s.complexity_new THEN s.budget
                ELSE coalesce(s.complexity_remaining, 0) END AS avail,
           coalesce(s.complexity_window, $3) AS window_seconds
      FROM s
), g AS (
    SELECT b.*,
           CASE WHEN b.paused_until > b.t THEN 0
                WHEN NOT b.requests_new AND b.requests_remaining < 1 THEN 0
                -- A window nothing was spent from takes at least one operation: whether one
                -- costs more than a whole window is for Monday to say, not for our estimate;
                -- so does any budget left when the estimate is only a guess (that one request
                -- tells the real cost: a guess too high must not keep every request back).
                WHEN b.complexity_new OR b.avail >= b.budget OR ($5::boolean AND b.avail > 0)
                    THEN greatest(1,
                    (SELECT count(*) FROM unnest($1::bigint[]) c WHERE c <= b.avail))
                ELSE (SELECT count(*) FROM unnest($1::bigint[]) c WHERE c <= b.avail)
           END::int AS ops
      FROM b
), taken AS (
    UPDATE npd_sync.monday m SET
        complexity_remaining = g.avail - ($1::bigint[])[g.ops],
        complexity_reported = CASE WHEN g.complexity_new THEN g.budget
                                   ELSE m.complexity_reported END,
        complexity_in_flight = CASE WHEN g.complexity_new THEN 0
                                    ELSE m.complexity_in_flight END + ($1::bigint[])[g.ops],
        complexity_reset_at =
            CASE WHEN g.complexity_new THEN g.t + make_interval(secs => g.window_seconds + 1)
                 ELSE m.complexity_reset_at END,
        complexity_window_id =
            m.complexity_window_id + CASE WHEN g.complexity_new THEN 1 ELSE 0 END,
        requests_remaining = CASE WHEN g.requests_new THEN $4 ELSE m.requests_remaining END - 1,
        requests_reset_at =
            CASE WHEN g.requests_new THEN g.t + interval '60 seconds' ELSE m.requests_reset_at END,
        updated_at = g.t
      FROM g
     WHERE m.id = g.id AND g.ops >= 1
    RETURNING m.complexity_window_id
)
SELECT g.ops AS granted,
       coalesce(($1::bigint[])[g.ops], 0) AS points,
       (SELECT complexity_window_id FROM taken) AS window_id,
       extract(epoch FROM greatest(
           CASE WHEN g.paused_until > g.t THEN g.paused_until END,
           CASE WHEN g.ops < 1 AND NOT g.complexity_new THEN g.complexity_reset_at END,
           CASE WHEN NOT g.requests_new AND g.requests_remaining < 1 THEN g.requests_reset_at END
       ) - g.t)::float8 AS wait,
       CASE WHEN g.paused_until > g.t THEN g.pause_reason END AS pause_reason
  FROM g;

-- name: observe
-- Correct the shared budget from what Monday said of one request, a reply or a refusal: the
-- request had reserved $1 points in window $2 and cost $3 (0 when refused, NULL when unknown);
-- Monday reports $4 points before it, $5 after it, a reset in $6 seconds, a budget of $7 a
-- window of $8 seconds, $9 requests left for $10 seconds; $11 rows were synced since the last
-- report; $12: refused for its complexity. NULL: not reported.
--
-- Monday's window is placed by its end: the request that opened it (before = the budget) ends
-- it a window from now, else now plus the reset Monday gives (whole seconds, rounded up). In
-- the same window as ours, Monday's figure replaces ours unless a smaller one came already (a
-- late reply), or unless it shows a larger budget than we assumed (then it is right); in a newer
-- one, Monday's figures replace ours; in an older one (a late reply), nothing changes. What is
-- left to reserve is what Monday says is left less what is reserved and not answered yet.
WITH v AS (
    SELECT m.*, now() AS t,
           coalesce($7::bigint, greatest(m.complexity_limit, $4::bigint)) AS new_limit,
           coalesce($8::float8, m.complexity_window) AS new_window
      FROM npd_sync.monday m
     WHERE m.id  -- the one row: without it the planner's guess of the rows makes JIT compile
       FOR UPDATE
), e AS (
    SELECT v.*,
           coalesce($4::bigint >= v.new_limit AND v.new_window IS NOT NULL, false) AS fresh,
           CASE WHEN $4::bigint >= v.new_limit AND v.new_window IS NOT NULL
                    THEN v.t + make_interval(secs => v.new_window)
                WHEN $6::float8 IS NOT NULL THEN v.t + make_interval(secs => $6::float8)
           END AS ends,
           CASE WHEN $2::bigint = v.complexity_window_id THEN $1::bigint ELSE 0 END AS given_back,
           v.complexity_limit IS NULL OR v.new_limit > v.complexity_limit AS larger
      FROM v
), w AS (
    SELECT e.*,
           CASE WHEN e.ends IS NULL OR $5::bigint IS NULL THEN 'unknown'
                WHEN e.complexity_reset_at IS NULL OR e.complexity_reset_at <= e.t
                     OR e.ends > e.complexity_reset_at + interval '1.5 seconds' THEN 'newer'
                WHEN $2::bigint = e.complexity_window_id
                     OR e.ends >= e.complexity_reset_at - interval '1.5 seconds' THEN 'same'
                ELSE 'stale' END AS relation
      FROM e
), n AS (
    SELECT w.*,
           CASE w.relation
               WHEN 'newer' THEN $5::bigint
               WHEN 'same' THEN CASE WHEN w.larger OR w.complexity_reported IS NULL THEN $5::bigint
                                     ELSE least(w.complexity_reported, $5::bigint) END
               WHEN 'unknown' THEN w.complexity_reported
                   - CASE WHEN w.given_back > 0 THEN coalesce($3::bigint, w.given_back)
                          ELSE coalesce($3::bigint, 0) END
               ELSE w.complexity_reported
           END AS reported,
           CASE WHEN w.relation = 'newer' THEN 0
                ELSE greatest(w.complexity_in_flight - w.given_back, 0) END AS in_flight
      FROM w
), updated AS (
    UPDATE npd_sync.monday m SET
        complexity_limit = n.new_limit,
        complexity_window = n.new_window,
        complexity_reported = n.reported,
        complexity_in_flight = n.in_flight,
        complexity_remaining = n.reported - n.in_flight,
        complexity_reset_at = CASE n.relation
            WHEN 'newer' THEN n.ends
            WHEN 'same' THEN CASE WHEN n.fresh THEN n.ends
                                  ELSE least(m.complexity_reset_at, n.ends) END
            ELSE m.complexity_reset_at END,
        complexity_window_id = m.complexity_window_id
            + CASE WHEN n.relation = 'newer' THEN 1 ELSE 0 END,
        requests_remaining = coalesce($9::int, m.requests_remaining),
        requests_reset_at = coalesce(n.t + make_interval(secs => $10::float8), m.requests_reset_at),
        updated_at = n.t
      FROM n
     WHERE m.id = n.id
    RETURNING 1
)
INSERT INTO npd_sync.monday_minutes AS mm (minute, points, requests, refused, rows_synced)
VALUES (date_trunc('minute', now()), coalesce($3::bigint, $1::bigint), 1,
        CASE WHEN $12::boolean THEN 1 ELSE 0 END, $11::int)
ON CONFLICT (minute) DO UPDATE SET
    points = mm.points + excluded.points,
    requests = mm.requests + excluded.requests,
    refused = mm.refused + excluded.refused,
    rows_synced = mm.rows_synced + excluded.rows_synced;

-- name: synced_rows
-- Count $1 rows synced this minute (when no request reported them), and forget the minutes
-- of more than a day ago.
WITH old AS (
    DELETE FROM npd_sync.monday_minutes WHERE minute < now() - interval '1 day'
)
INSERT INTO npd_sync.monday_minutes AS mm (minute, rows_synced)
VALUES (date_trunc('minute', now()), $1)
ON CONFLICT (minute) DO UPDATE SET rows_synced = mm.rows_synced + excluded.rows_synced;

-- name: budget_recent
-- What the listeners spent lately: the budget as Monday reports it (points a window, the
-- window's length), the points charged per minute over the last five busy complete minutes of
-- the past hour (and how many there were, and the requests refused in them), and the points
-- per row synced over that hour.
WITH recent AS (
    SELECT * FROM npd_sync.monday_minutes
     WHERE minute < date_trunc('minute', now())
       AND minute >= date_trunc('minute', now()) - interval '1 hour'
), busy AS (
    SELECT * FROM recent WHERE points > 0 ORDER BY minute DESC LIMIT 5
)
SELECT m.complexity_limit, m.complexity_window,
       (SELECT avg(points) FROM busy)::float8 AS points_per_minute,
       (SELECT count(*) FROM busy)::int AS minutes,
       (SELECT coalesce(sum(refused), 0) FROM busy)::int AS refused,
       (SELECT sum(points)::float8 / nullif(sum(rows_synced), 0) FROM recent) AS points_per_row
  FROM npd_sync.monday m;

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
