"""`npd-sync console`: a web console for the people who notice that a row never showed up.

Server-rendered pages (`app`, Jinja2 templates and htmx in `templates/` and `static/`, shipped
as package data): the overview (per table: pending, in flight, failed, synced, the oldest
pending change, open conflicts; listeners, Monday's pause and budget, inbound; the last hour
as charts, `charts`), the failed rows with retry (the same operation as `npd-sync retry`), the
conflicts with their resolution (the same operation as `npd-sync conflicts resolve`), and one
row's story. It reads the database through `listener.operations` (the same operations as the
CLI's; `data` puts the overview together) and works with or without a listener running;
`npd-sync listen --console-port` serves it from the listener too. `security` guards every
request.
"""

from listener.console.app import DEFAULT_ITEM_URL, DEFAULT_PORT, Options, Served, run, serve

__all__ = ["DEFAULT_ITEM_URL", "DEFAULT_PORT", "Options", "Served", "run", "serve"]
