-- npd-sync schema, version 6: Monday's complexity budget as Monday reports it, and what it
-- is spent on.

-- The budget a window and the window's length as Monday last reported them (RateLimit-Policy,
-- a refusal's figures), NULL until it has. In the current window: the points Monday last said
-- were left (the least it said: its figure only falls within a window, so a larger one is a late
-- reply), and the points reserved for requests not answered yet; complexity_remaining is what
-- can still be reserved, the one less the other. complexity_window_id names the window: a
-- reply to a request reserved in an earlier one gives nothing back to this one.
ALTER TABLE npd_sync.monday
    ADD COLUMN complexity_limit bigint,
    ADD COLUMN complexity_window real,
    ADD COLUMN complexity_window_id bigint NOT NULL DEFAULT 0,
    ADD COLUMN complexity_reported bigint,
    ADD COLUMN complexity_in_flight bigint NOT NULL DEFAULT 0;

-- Per minute (of the database's clock), what every listener spent together: the points Monday
-- charged, the requests and the ones refused for their complexity, the rows synced. For
-- `npd-sync status` and /metrics; a day of it is kept.
CREATE TABLE npd_sync.monday_minutes (
    minute timestamptz PRIMARY KEY,
    points bigint NOT NULL DEFAULT 0,
    requests integer NOT NULL DEFAULT 0,
    refused integer NOT NULL DEFAULT 0,
    rows_synced integer NOT NULL DEFAULT 0
);
