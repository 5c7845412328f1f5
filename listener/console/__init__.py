"""`npd-sync console`: a web console for the people who notice that a row never showed up.

Server-rendered pages (`app`, Jinja2 templates and htmx in `templates/` and `static/`, shipped
as package data): the overview (per table: pending, in flight, failed, synced, the oldest
pending change, open conflicts; listeners, Monday's pause and budget, inbound; the last hour
as charts, `charts`), a search for rows (`/rows?q=`), the failed rows grouped by error with
retry and stop retrying (the same operations as `npd-sync retry [--discard]`), the conflicts
with their resolution (the same operation as `npd-sync conflicts resolve`), one row's story
(its history, its relations, its item read from Monday on demand), and the mapping. Values and
times are shown as people read them (`shown`). It reads the database through
`listener.operations` (the same operations as the CLI's; `data` puts the overview together)
and works with or without a listener running; `npd-sync listen --console-port` serves it from
the listener too. `security` guards every request.
"""

from listener.console.app import DEFAULT_ITEM_URL, DEFAULT_PORT, Options, Served, run, serve

__all__ = ["DEFAULT_ITEM_URL", "DEFAULT_PORT", "Options", "Served", "run", "serve"]
