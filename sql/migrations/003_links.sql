-- npd-sync schema, version 3: what each row's item holds, as both sides last agreed.

-- One row per application row linked to a Monday item, written by the listener in the same
-- transaction as the row's write-back: the item it created or adopted, and the value of each
-- Monday column (and the item name, under "name") as Monday last accepted it, in the JSON
-- form npd-sync sends. A push sends only the columns whose value differs from this record; an
-- edit made on one side is told from one made on the other against it.
CREATE TABLE npd_sync.links (
    table_id smallint NOT NULL,
    row_key text NOT NULL,
    item_id text NOT NULL,
    agreed jsonb NOT NULL DEFAULT '{}',
    agreed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (table_id, row_key)
);
CREATE UNIQUE INDEX links_item ON npd_sync.links (item_id);
