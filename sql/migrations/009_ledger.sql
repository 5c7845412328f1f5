-- npd-sync schema, version 9: Monday's limits as rows of one ledger, and boards held by a
-- lease in a row rather than by an advisory lock that any role could take.

-- One row per limit of the account that every listener of this database shares (today the
-- complexity budget and the requests a minute; a new limit is a new row). For each: the quota a
-- window and the window's length as Monday last reported them (NULL: not reported, the plan's
-- figures stand in); in the current window, which `window_id` names, the units Monday last said
-- were left (`reported`; the quota at the start of a window, until Monday says) and the units
-- reserved for requests not settled yet (`in_flight`). What can be reserved is the one less the
-- other. A reply to a request reserved in an earlier window gives nothing back to this one.
CREATE TABLE npd_sync.monday_limits (
    name text PRIMARY KEY,
    quota bigint,
    window_seconds real,
    reported bigint,
    in_flight bigint NOT NULL DEFAULT 0,
    reset_at timestamptz,
    window_id bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO npd_sync.monday_limits (name, quota, window_seconds, reported, in_flight, reset_at,
                                    window_id)
SELECT 'complexity', complexity_limit, complexity_window, complexity_reported,
       complexity_in_flight, complexity_reset_at, complexity_window_id
  FROM npd_sync.monday
UNION ALL
SELECT 'requests', NULL, NULL, requests_remaining, 0, requests_reset_at, 0
  FROM npd_sync.monday;

ALTER TABLE npd_sync.monday
    DROP COLUMN complexity_remaining,
    DROP COLUMN complexity_reset_at,
    DROP COLUMN requests_remaining,
    DROP COLUMN requests_reset_at,
    DROP COLUMN complexity_limit,
    DROP COLUMN complexity_window,
    DROP COLUMN complexity_window_id,
    DROP COLUMN complexity_reported,
    DROP COLUMN complexity_in_flight;

-- A board is held by one request at a time (Monday asks that mutations to a board not be sent
-- concurrently): by a lease that only roles with npd-sync's rights can write (nothing here is
-- granted to PUBLIC). It runs out at `expires_at`, or as soon as the session that took it
-- (`holder_pid`, one of its listener's pooled connections) is gone: a listener killed
-- mid-request holds its board no longer than an advisory lock would have.
CREATE TABLE npd_sync.board_leases (
    board_id text PRIMARY KEY,
    holder text NOT NULL,
    holder_pid integer NOT NULL,
    expires_at timestamptz NOT NULL
);
