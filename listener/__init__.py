"""npd-sync: mirror PostgreSQL rows onto Monday.com boards.

The package in layers, each a folder, over a few foundation modules:

- `capture/`: what runs in the database: the versioned schema, the triggers that record each
  change (`install`), and the wake-up that tells a listener to look (`notify`);
- `engine/`: the two-way engine, one pipeline for both directions: the durable queue, where
  batches come from (`source`), what each entry needs (`plans`, pure), the exchange with
  Monday, the outcomes (`decide`, pure) and the transaction that records them (`recorder`);
- `inbound/`: Monday to PostgreSQL: the webhook receiver, the inbox, the three-way merge
  (pure), conflicts, reconciliation and the webhooks' registration;
- `monday/`: the Monday edge: the GraphQL client (`api`), typed errors, and the governor that
  keeps every listener inside Monday's limits;
- `operations/`: what an operator can ask (the status report, retry, conflicts and their
  resolution, failed rows, a row's story), for the commands and the console alike;
- `commands/`: the CLI's commands (see `commands/__init__.py`): options, text and exit codes;
  `console/`: the web console's pages;
- foundations: `settings`, `mapping` (row to column values, pure), `catalog` (the tables as
  PostgreSQL describes them), `rows` (the application's rows), `links` (the values both sides
  agreed on), `relations` (rows waiting for referenced rows' items), `listeners` and
  `throughput` (heartbeats, the per-minute history), `fault` (an entry's last error and its
  one formatter), `text` (counts, durations and times for people), `db`, `sql` (the `.sql`
  files by name), `redact`, `logs`, `metrics`;
- `daemon` puts the layers together as `npd-sync listen`; `cli` is the command line.
"""

__version__ = "0.1.0"
