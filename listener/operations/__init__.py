"""What an operator can ask of npd-sync, one module each, for the CLI (`listener.commands`:
options, text and exit codes) and the console (`listener.console`: pages and forms) alike:

- `report`: the state of every table, the latest errors, the listeners, Monday, inbound
  (`npd-sync status`, the console's overview);
- `retry`: failed rows back in the queue, or out of it (`npd-sync retry [--discard]`, the
  console's Retry and Stop retrying);
- `conflicts`: open and resolved conflicts, listed or a page of rows at a time, and their
  resolution (`npd-sync conflicts`, `conflicts resolve`, the console's Conflicts page);
- `failed`: the failed rows grouped by error, and a page of them at a time (the console's
  Failed page);
- `story`: everything npd-sync knows about one row, and the row of a Monday item; `related`:
  its relations both ways;
- `search`: rows found by key, item id, email or name (the console's Find a row);
- `items`: links to items, and one item read from Monday on demand, through the governor;
- `boards`: the boards' columns from Monday, and the mapping in effect (`npd-sync mapping
  show`, the console's Mapping page);
- `keys`: keys as the table's key type prints them, and what a request that cannot be met
  raises (`UsageError`).

Each takes a connection and the settings and returns dataclasses; none prints or renders.
"""
