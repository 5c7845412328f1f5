-- Monday's limits, shared by every listener: the ledger (`npd_sync.monday_limits`, a row per
-- limit), the account-wide pause, the board leases (see listener/monday/ledger.py).

-- name: reserve
-- Take from every limit of the ledger, which all listeners of this database share, as many of
-- the operations asked for as all of them hold. $1: the limits' names; $2, $3: the quota a
-- window and its length to assume for each until Monday has reported them; $4: what the first
-- k operations need of each limit, k = 1..$5 (the limits one after the other, $5 figures
-- each); $6: per limit, whether the first figure is a guess nothing has confirmed yet.
--
-- A window that has run out starts again in full; its end is a guess (a second late, to be
-- safe) until a reply says. A window nothing was spent from takes at least one operation:
-- whether one costs more than a whole window is for Monday to say, not for our estimate; so
-- does any budget left when the estimate is only a guess (that one request tells the real
-- cost: a guess too high must not keep every request back).
--
-- Returns how many operations were granted (0: none), per limit the units taken and the window
-- they were taken from; if none was granted, in how many seconds some could be, why, and
-- whether requests in flight hold what is missing (their replies may give it back).
WITH d AS (
    SELECT *
      FROM unnest($1::text[], $2::bigint[], $3::float8[], $6::boolean[]) WITH ORDINALITY
           AS d(name, plan_quota, plan_window, guessing, i)
), s AS (
    SELECT l.name, l.reported, l.in_flight, l.reset_at, l.window_id, d.guessing, now() AS t,
           l.reset_at IS NULL OR l.reset_at <= now() AS fresh,
           coalesce(l.quota, d.plan_quota) AS budget,
           coalesce(l.window_seconds, d.plan_window) AS window_length,
           ($4::bigint[])[(d.i - 1) * $5 + 1 : d.i * $5] AS needs
      FROM npd_sync.monday_limits l JOIN d USING (name)
     ORDER BY l.name
       FOR UPDATE OF l
), a AS (
    SELECT s.*,
           CASE WHEN s.fresh THEN s.budget
                ELSE coalesce(s.reported, s.budget) - s.in_flight END AS avail
      FROM s
), f AS (
    SELECT a.*,
           CASE WHEN a.fresh OR a.avail >= a.budget OR (a.guessing AND a.avail > 0)
                    THEN greatest(1, (SELECT count(*) FROM unnest(a.needs) c WHERE c <= a.avail))
                ELSE (SELECT count(*) FROM unnest(a.needs) c WHERE c <= a.avail)
           END::int AS ops
      FROM a
), p AS (
    SELECT m.paused_until > now() AS paused, m.paused_until, m.pause_reason
      FROM npd_sync.monday m
), g AS (
    SELECT CASE WHEN (SELECT paused FROM p) THEN 0 ELSE coalesce(min(f.ops), 1) END AS granted
      FROM f
), taken AS (
    UPDATE npd_sync.monday_limits l SET
        reported = CASE WHEN f.fresh THEN f.budget ELSE l.reported END,
        in_flight = CASE WHEN f.fresh THEN 0 ELSE l.in_flight END + f.needs[g.granted],
        reset_at = CASE WHEN f.fresh THEN f.t + make_interval(secs => f.window_length + 1)
                        ELSE l.reset_at END,
        window_id = l.window_id + CASE WHEN f.fresh THEN 1 ELSE 0 END,
        updated_at = f.t
      FROM f, g
     WHERE l.name = f.name AND g.granted >= 1
    RETURNING l.name, f.needs[g.granted] AS amount, l.window_id
), short AS (
    -- The limits that hold none of the operations.
    SELECT f.* FROM f WHERE f.ops < 1
)
SELECT g.granted,
       (SELECT array_agg(taken.name ORDER BY taken.name) FROM taken) AS names,
       (SELECT array_agg(taken.amount ORDER BY taken.name) FROM taken) AS amounts,
       (SELECT array_agg(taken.window_id ORDER BY taken.name) FROM taken) AS window_ids,
       extract(epoch FROM greatest(
           (SELECT CASE WHEN p.paused THEN p.paused_until END FROM p),
           (SELECT max(short.reset_at) FROM short)
       ) - now())::float8 AS wait,
       (SELECT CASE WHEN p.paused THEN p.pause_reason END FROM p) AS pause_reason,
       (SELECT string_agg(short.name, ',' ORDER BY short.name) FROM short) AS short,
       coalesce((SELECT bool_and(short.in_flight > 0) FROM short), false) AS settling
  FROM g;

-- name: settle
-- Correct the ledger from what Monday said of one request, a reply or a refusal, and count the
-- request; give the board back. Per limit ($1): the request had reserved $2 units in window
-- $3 and used $4 (NULL when not known); Monday reports $5 units before it and $6 after it, a
-- reset in $7 seconds, a quota of $8 a window of $9 seconds (NULL: not reported). $10 points
-- spent, $11 rows synced since the last count and $12 (refused for complexity) go to this
-- minute's row; $13, $14: the board and the lease's holder to release (NULL: none); $15: what
-- the request counts against the day's calls (1, a tenth when a rate limit refused it).
--
-- Monday's window is placed by its end: the request that opened it (before = the quota) ends
-- it a window from now, else now plus the reset Monday gives (whole seconds, rounded up). In
-- the same window as ours, Monday's figure replaces ours unless a smaller one came already (a
-- late reply), or unless it shows a larger quota than we assumed (then it is right); in a newer
-- one, Monday's figures replace ours; in an older one (a late reply), nothing changes. What is
-- left to reserve is what Monday says is left less what is reserved and not settled yet.
WITH r AS (
    SELECT *
      FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[],
                  $6::bigint[], $7::float8[], $8::bigint[], $9::float8[])
           AS r(name, reserved, granted_window, used, before, after, reset_in, told_quota,
                told_window)
), v AS (
    SELECT l.name, l.quota, l.reported, l.in_flight, l.reset_at, l.window_id, r.reserved,
           r.granted_window, r.used, r.before, r.after, r.reset_in, now() AS t,
           coalesce(r.told_quota, greatest(l.quota, r.before)) AS new_quota,
           coalesce(r.told_window, l.window_seconds) AS new_window
      FROM npd_sync.monday_limits l JOIN r USING (name)
     ORDER BY l.name
       FOR UPDATE OF l
), e AS (
    SELECT v.*,
           coalesce(v.before >= v.new_quota AND v.new_window IS NOT NULL, false) AS opened,
           CASE WHEN v.before >= v.new_quota AND v.new_window IS NOT NULL
                    THEN v.t + make_interval(secs => v.new_window)
                WHEN v.reset_in IS NOT NULL THEN v.t + make_interval(secs => v.reset_in)
           END AS ends,
           CASE WHEN v.granted_window = v.window_id THEN v.reserved ELSE 0 END AS given_back,
           v.quota IS NULL OR v.new_quota > v.quota AS larger
      FROM v
), w AS (
    SELECT e.*,
           CASE WHEN e.after IS NULL THEN 'unknown'
                WHEN e.ends IS NULL THEN
                    CASE WHEN e.granted_window = e.window_id THEN 'same' ELSE 'stale' END
                WHEN e.reset_at IS NULL OR e.reset_at <= e.t
                     OR e.ends > e.reset_at + interval '1.5 seconds' THEN 'newer'
                WHEN e.granted_window = e.window_id
                     OR e.ends >= e.reset_at - interval '1.5 seconds' THEN 'same'
                ELSE 'stale' END AS relation
      FROM e
), n AS (
    SELECT w.*,
           CASE w.relation
               WHEN 'newer' THEN w.after
               WHEN 'same' THEN CASE WHEN w.larger OR w.reported IS NULL THEN w.after
                                     ELSE least(w.reported, w.after) END
               WHEN 'unknown' THEN w.reported
                   - CASE WHEN w.given_back > 0 THEN coalesce(w.used, w.given_back)
                          ELSE coalesce(w.used, 0) END
               ELSE w.reported
           END AS new_reported,
           CASE WHEN w.relation = 'newer' THEN 0
                ELSE greatest(w.in_flight - w.given_back, 0) END AS new_in_flight
      FROM w
), updated AS (
    UPDATE npd_sync.monday_limits l SET
        quota = n.new_quota,
        window_seconds = n.new_window,
        reported = n.new_reported,
        in_flight = n.new_in_flight,
        reset_at = CASE n.relation
            WHEN 'newer' THEN n.ends
            WHEN 'same' THEN CASE WHEN n.opened THEN n.ends ELSE least(l.reset_at, n.ends) END
            ELSE l.reset_at END,
        window_id = l.window_id + CASE WHEN n.relation = 'newer' THEN 1 ELSE 0 END,
        updated_at = n.t
      FROM n
     WHERE l.name = n.name
    RETURNING 1
), released AS (
    DELETE FROM npd_sync.board_leases WHERE board_id = $13 AND holder = $14
), counted AS (
    -- A new UTC day starts the day's counts again.
    UPDATE npd_sync.monday_day d SET
        own_calls = CASE WHEN d.day = (now() AT TIME ZONE 'UTC')::date THEN d.own_calls
                         ELSE 0 END + $15::real,
        others_used = CASE WHEN d.day = (now() AT TIME ZONE 'UTC')::date THEN d.others_used END,
        account_used = CASE WHEN d.day = (now() AT TIME ZONE 'UTC')::date
                            THEN d.account_used END,
        unpaid = d.unpaid + $15::real,
        day = (now() AT TIME ZONE 'UTC')::date
)
INSERT INTO npd_sync.monday_minutes AS mm (minute, points, requests, refused, rows_synced)
VALUES (date_trunc('minute', now()), $10::bigint, 1, CASE WHEN $12::boolean THEN 1 ELSE 0 END,
        $11::int)
ON CONFLICT (minute) DO UPDATE SET
    points = mm.points + excluded.points,
    requests = mm.requests + excluded.requests,
    refused = mm.refused + excluded.refused,
    rows_synced = mm.rows_synced + excluded.rows_synced;

-- name: limit_window
-- One limit's current window, as the pacing sees it ($1: its name): its quota and length ($2,
-- $3 until Monday has reported them), the units left to reserve in it, and the seconds until
-- it starts again (NULL: it has, or none started yet).
SELECT coalesce(l.quota, $2::bigint)::float8 AS quota,
       coalesce(l.window_seconds, $3::float8)::float8 AS window_seconds,
       (coalesce(l.reported, l.quota, $2::bigint) - l.in_flight)::float8 AS remaining,
       CASE WHEN l.reset_at > now() THEN extract(epoch FROM l.reset_at - now())::float8
       END AS reset_in
  FROM npd_sync.monday_limits l
 WHERE l.name = $1;

-- name: take_board
-- Hold board $1 for holder $2 for $3 seconds, unless another holder's lease on it still runs
-- (it has not expired and the session that took it is still there). Returns true when taken.
INSERT INTO npd_sync.board_leases AS b (board_id, holder, holder_pid, expires_at)
VALUES ($1, $2, pg_backend_pid(), now() + make_interval(secs => $3))
ON CONFLICT (board_id) DO UPDATE SET
    holder = excluded.holder, holder_pid = excluded.holder_pid, expires_at = excluded.expires_at
 WHERE b.expires_at <= now() OR b.holder = excluded.holder
    OR NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.pid = b.holder_pid)
RETURNING true;

-- name: give_board
-- Release holder $2's lease on board $1 (nothing if it ran out and another took it).
DELETE FROM npd_sync.board_leases WHERE board_id = $1 AND holder = $2;

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
-- What the listeners spent lately: the complexity budget as Monday reports it (points a
-- window, the window's length), the points charged per minute over the last five busy complete
-- minutes of the past hour (and how many there were, and the requests refused in them), and
-- the points per row synced over that hour.
WITH recent AS (
    SELECT * FROM npd_sync.monday_minutes
     WHERE minute < date_trunc('minute', now())
       AND minute >= date_trunc('minute', now()) - interval '1 hour'
), busy AS (
    SELECT * FROM recent WHERE points > 0 ORDER BY minute DESC LIMIT 5
)
SELECT l.quota AS complexity_limit, l.window_seconds AS complexity_window,
       (SELECT avg(points) FROM busy)::float8 AS points_per_minute,
       (SELECT count(*) FROM busy)::int AS minutes,
       (SELECT coalesce(sum(refused), 0) FROM busy)::int AS refused,
       (SELECT sum(points)::float8 / nullif(sum(rows_synced), 0) FROM recent) AS points_per_row
  FROM npd_sync.monday_limits l
 WHERE l.name = 'complexity';

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

-- name: day_for_pacing
-- The day's counts and the pacing bucket, locked until the caller's transaction ends (an
-- UPDATE takes the row's lock); a new UTC day starts them again, the bucket full. Also the
-- database's clock.
UPDATE npd_sync.monday_day d SET
    day = (now() AT TIME ZONE 'UTC')::date,
    own_calls = CASE WHEN d.day = (now() AT TIME ZONE 'UTC')::date THEN d.own_calls ELSE 0 END,
    unpaid = CASE WHEN d.day = (now() AT TIME ZONE 'UTC')::date THEN d.unpaid ELSE 0 END,
    tokens = CASE WHEN d.day = (now() AT TIME ZONE 'UTC')::date THEN d.tokens END,
    tokens_at = CASE WHEN d.day = (now() AT TIME ZONE 'UTC')::date THEN d.tokens_at END,
    others_used = CASE WHEN d.day = (now() AT TIME ZONE 'UTC')::date THEN d.others_used END,
    account_used = CASE WHEN d.day = (now() AT TIME ZONE 'UTC')::date THEN d.account_used END
RETURNING d.own_calls, d.unpaid, d.tokens, d.tokens_at, d.daily_limit, d.others_used,
          now() AS now;

-- name: day_paced
-- The pacing bucket after a look: $1 tokens now; the calls counted in them are paid.
UPDATE npd_sync.monday_day SET tokens = $1, tokens_at = now(), unpaid = 0;

-- name: day_ask
-- Whether this listener is the one to ask Monday for the day's figures now: npd-sync made at
-- least $2 calls today, and nobody asked in the past $1 seconds (the first to look takes the
-- turn). Returns true when it is.
UPDATE npd_sync.monday_day SET learnt_at = now()
 WHERE (learnt_at IS NULL OR learnt_at < now() - make_interval(secs => $1))
   AND day = (now() AT TIME ZONE 'UTC')::date AND own_calls >= $2
RETURNING true;

-- name: day_limit
-- The daily limit Monday last stated (NULL: not known).
SELECT daily_limit FROM npd_sync.monday_day;

-- name: day_learnt
-- What Monday said of the day: the limit $1 (NULL: not said) and the account's usage per UTC
-- day ($2, $3) as of $4; today's is kept. Calls of other apps are that usage less npd-sync's
-- own calls up to then (those counted since, by minute, are npd-sync's own).
WITH today AS (
    SELECT u.usage
      FROM unnest($2::date[], $3::int[]) AS u(day, usage)
     WHERE u.day = (now() AT TIME ZONE 'UTC')::date
)
UPDATE npd_sync.monday_day d SET
    daily_limit = $1,
    account_used = (SELECT usage FROM today),
    account_updated_at = CASE WHEN EXISTS (SELECT FROM today) THEN $4::timestamptz END,
    others_used = (SELECT t.usage - (d.own_calls - coalesce((
        SELECT sum(m.requests) FROM npd_sync.monday_minutes m
         WHERE m.minute >= date_trunc('minute', $4::timestamptz)), 0)) FROM today t),
    learnt_at = now()
 WHERE d.day = (now() AT TIME ZONE 'UTC')::date;

-- name: day_use
-- The day as status shows it: the limit Monday states, the account's usage as Monday last
-- reported it and when, npd-sync's own calls today, and its calls in the past hour.
SELECT d.day, d.daily_limit, d.account_used, d.account_updated_at, d.others_used,
       CASE WHEN d.day = (now() AT TIME ZONE 'UTC')::date THEN d.own_calls ELSE 0 END
           AS own_calls,
       (SELECT coalesce(sum(m.requests), 0) FROM npd_sync.monday_minutes m
         WHERE m.minute >= now() - interval '1 hour')::float8 AS last_hour,
       now() AS now
  FROM npd_sync.monday_day d;
