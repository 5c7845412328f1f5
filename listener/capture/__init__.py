"""Capture and wake-up: the database side of npd-sync.

`install` applies the numbered migrations (`sql/migrations/`) and attaches the capture triggers
(`sql/triggers/capture.sql`) to each configured table; the triggers append each committed
change to `npd_sync.changes` in the application's own transaction. `notify` is the listener's
LISTEN connection and the protocol that makes writers NOTIFY only while a listener waits.
"""
