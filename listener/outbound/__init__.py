"""PostgreSQL to Monday: from the change log to items on the board.

`queue` folds change records into one entry per row and leases entries to listeners; `rows`
loads the application's rows and writes the sync columns back; `rules` decides, as pure
functions, what to send and what to record; `worker` puts them together, a batch at a time.
"""
