-- npd-sync schema, version 5: what the listeners did, minute by minute (the console's charts).

-- Each listener adds its counts here once a minute, from the counters it keeps in memory for
-- /metrics: rows synced, failed for good and retried, and how long synced rows took from their
-- transaction to Monday's answer, as a histogram (rows per bucket, not cumulative; the bounds
-- are listener.metrics.LATENCY_BUCKETS, then one bucket for anything slower). Rows older than a
-- day are deleted by the listener as it writes, so the table stays small.
CREATE TABLE npd_sync.throughput (
    minute timestamptz NOT NULL,
    listener_id text NOT NULL,
    synced integer NOT NULL DEFAULT 0,
    failed integer NOT NULL DEFAULT 0,
    retried integer NOT NULL DEFAULT 0,
    latency_buckets integer[] NOT NULL,
    latency_sum float8 NOT NULL DEFAULT 0,
    PRIMARY KEY (minute, listener_id)
);
