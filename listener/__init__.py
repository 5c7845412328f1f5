"""npd-sync: mirror PostgreSQL rows onto Monday.com boards.

The package in layers, each a folder, over a few foundation modules:

- `capture/`: what runs in the database: the versioned schema, the triggers that record each
  change (`install`), and the wake-up that tells a listener to look (`notify`);
- `outbound/`: PostgreSQL to Monday: the durable queue, the application's rows, the pure rules
  of what to send, and the worker that pushes batches;
- `monday/`: the Monday edge: the GraphQL client (`api`), typed errors, and the governor that
  keeps every listener inside Monday's limits;
- `inbound/`: Monday to PostgreSQL: the webhook receiver, the inbox, merging an item with its
  row, conflicts, reconciliation, the webhooks npd-sync registers;
- `operations/`: what an operator can ask (the status report, retry, conflicts and their
  resolution, failed rows, a row's story), for the commands and the console alike;
- `commands/`: the CLI's commands (install, backfill, status, retry, check, webhooks, pull,
  conflicts): options, text and exit codes; `console/`: the web console's pages;
- foundations: `settings`, `mapping` (row to column values, pure), `catalog` (the tables as
  PostgreSQL describes them), `db`, `sql` (the `.sql` files by name), `redact`, `logs`,
  `metrics`, `links`, `fault` (an entry's last error and its one formatter), `text` (counts,
  durations and times for people);
- `daemon` puts the layers together as `npd-sync listen`; `cli` is the command line.
"""

__version__ = "0.1.0"
