"""The CLI's commands, one module each, each with an async `run` (or the command's own verb)
that `listener/cli.py` calls: options, text and exit codes. The work they share with the
console is in `listener.operations`.

- `schema`: `npd-sync install` / `uninstall` (the work itself is `listener.capture.install`);
- `backfill`: push rows that existed before the triggers, through the listener's queue;
- `status`: what waits, what failed, the listeners, Monday's state, inbound;
- `requeue`: `npd-sync retry`, failed rows back in the queue;
- `check`: is everything in place, one line per check;
- `webhooks`: `npd-sync webhooks install` / `list` / `uninstall`;
- `pull`: bring the boards' edits into the database now;
- `conflicts`: `npd-sync conflicts` and `conflicts resolve`;
- `mappings`: `npd-sync mapping init` (a mapping file for your boards) and `mapping show`.
"""
