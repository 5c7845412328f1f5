-- The webhooks npd-sync registered on Monday (npd_sync.webhooks, see
-- listener/inbound/webhooks.py).

-- name: stored_webhooks
-- The webhooks npd-sync created, per board and event.
SELECT board_id, event, webhook_id, created_at FROM npd_sync.webhooks ORDER BY board_id, event;

-- name: store_webhook
-- Remember that webhook $3 serves event $2 of board $1.
INSERT INTO npd_sync.webhooks (board_id, event, webhook_id) VALUES ($1, $2, $3)
ON CONFLICT (board_id, event) DO UPDATE SET webhook_id = excluded.webhook_id,
                                            created_at = now();

-- name: forget_webhooks
-- Forget every webhook npd-sync created, and the receiver's secret with them.
WITH gone AS (DELETE FROM npd_sync.webhooks RETURNING 1)
DELETE FROM npd_sync.receiver;
