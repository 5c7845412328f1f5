"""Monday to PostgreSQL: board edits flow back into rows whose direction allows it.

A webhook is only a wake-up, like the NOTIFY: `receiver` stores each delivery durably
(deduplicated) before answering 200, and marks its item in `npd_sync.inbox` (`inbox`); items
linked to a row arrive in the row's queue entry, flagged to read the item first. The engine
(`listener.engine`) then reads the batch's items from Monday, merges each with its row against
the values both sides last agreed on (`merge`, pure), writes the board's edits into the row,
pushes the row's, and records conflicts (`conflicts`). Items created on the board are claimed
from the inbox beside each batch. `reconcile` is the safety net for lost deliveries;
`webhooks` registers the webhooks with Monday.
"""
