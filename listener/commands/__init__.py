"""Operator commands, one module each, each with an async `run` that `listener/cli.py` calls:

- `schema`: `npd-sync install` / `uninstall` (the work itself is `listener.capture.install`);
- `backfill`: push rows that existed before the triggers, through the listener's queue;
- `status`: what waits, what failed, the listeners, Monday's state;
- `requeue`: `npd-sync retry`, failed rows back in the queue;
- `check`: is everything in place, one line per check;
- `mappings`: `npd-sync mapping init` (a mapping file for your boards) and `mapping show`.
"""
