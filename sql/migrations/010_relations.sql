-- npd-sync schema, version 10: relations (connect-boards columns).
--
-- A row whose foreign key references a row without an item yet (not pushed yet, or in the
-- same batch) is pushed without that link and waits here for it: once the referenced row is
-- linked to its item, the waiting rows are queued again, together.
CREATE TABLE npd_sync.awaited (
    ref_table_id smallint NOT NULL,
    ref_key text NOT NULL,
    table_id smallint NOT NULL,
    row_key text NOT NULL,
    since timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (ref_table_id, ref_key, table_id, row_key)
);
