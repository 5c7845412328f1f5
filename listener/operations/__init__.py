"""What an operator can ask of npd-sync, one module each, for the CLI (`listener.commands`:
options, text and exit codes) and the console (`listener.console`: pages and forms) alike:

- `report`: the state of every table, the latest errors, the listeners, Monday, inbound
  (`npd-sync status`, the console's overview);
- `retry`: failed rows back in the queue (`npd-sync retry`, the console's Retry);
- `conflicts`: open and resolved conflicts, listed or a page of rows at a time, and their
  resolution (`npd-sync conflicts`, `conflicts resolve`, the console's Conflicts page);
- `failed`: the failed rows, a page at a time (the console's Failed page);
- `story`: everything npd-sync knows about one row, and the row of a Monday item;
- `keys`: keys as the table's key type prints them, and what a request that cannot be met
  raises (`UsageError`).

Each takes a connection and the settings and returns dataclasses; none prints or renders.
"""
