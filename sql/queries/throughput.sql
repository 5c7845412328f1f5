-- What the listeners did, minute by minute (npd_sync.throughput; the console's charts).

-- name: record_minute
-- Add listener $1's counts since its last flush to the current minute: $2 rows synced, $3
-- failed, $4 retried, $5 synced rows per latency bucket, $6 their latencies' sum (seconds).
INSERT INTO npd_sync.throughput AS t
       (minute, listener_id, synced, failed, retried, latency_buckets, latency_sum)
VALUES (date_trunc('minute', now()), $1, $2, $3, $4, $5::int4[], $6)
ON CONFLICT (minute, listener_id) DO UPDATE SET
    synced = t.synced + excluded.synced,
    failed = t.failed + excluded.failed,
    retried = t.retried + excluded.retried,
    latency_buckets = ARRAY(
        SELECT coalesce(a, 0) + coalesce(b, 0)
          FROM unnest(t.latency_buckets, excluded.latency_buckets) AS u(a, b)
    ),
    latency_sum = t.latency_sum + excluded.latency_sum;

-- name: forget_old_minutes
-- Keep a day of history.
DELETE FROM npd_sync.throughput WHERE minute < now() - interval '1 day';

-- name: recent_minutes
-- Every listener's counts for the last $1 minutes (the current one included), oldest first,
-- with the database's current minute.
SELECT minute, synced, failed, retried, latency_buckets, latency_sum,
       date_trunc('minute', now()) AS this_minute
  FROM npd_sync.throughput
 WHERE minute > date_trunc('minute', now()) - make_interval(mins => $1)
 ORDER BY minute, listener_id;
