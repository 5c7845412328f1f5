-- Capture for one application table. A template: `install` fills {table}, {key}, {key_literal},
-- {data_columns}, {id}, {wake_lock}, {channel} and {mark} with quoted identifiers, literals and
-- integers, and {fn} with a dollar-quote tag that the key's name does not contain; it runs it
-- in one transaction. Running it again replaces everything it created.
--
-- Row-level triggers, each appending one narrow row to npd_sync.changes: measured on a 2-core
-- machine this costs a single-row write about as much as any capture can (statement-level
-- triggers with transition tables cost 7-10% more per single-row transaction).
--
-- What is captured:
-- - INSERT and DELETE, always (a delete keeps the row's monday_id to archive its item);
-- - UPDATE only when its SET list names a data column, so an UPDATE of monday_id, sync_status,
--   sync_error or last_synced_at alone records nothing. {data_columns} are the table's columns
--   at install time; run `npd-sync install` again after adding columns (`check` says when);
-- - an UPDATE of the key as a delete of the old key and an insert of the new one;
-- - TRUNCATE, reading the rows that have items before they go.
-- npd-sync's own sessions are never captured: each sets the setting npd_sync.origin to the
-- secret kept in the table npd_sync.origin (listener/db.py), and the WHEN clauses compare its
-- SHA-256 with the digest install writes into them. Other sessions leave the setting unset,
-- which costs them nothing: every function in the WHEN clause returns NULL on NULL.
--
-- The functions run as the role that installed them (SECURITY DEFINER) and nobody else may
-- call them: the application's roles need no right on npd_sync at all, and a TRUNCATE by a role
-- that may not SELECT the table works. So that a caller's search_path cannot put its own
-- operators or types in them, every operator and type in the row-level functions is written
-- with its schema (OPERATOR(pg_catalog.>), ::pg_catalog.text) rather than fixed with `SET
-- search_path`, which would save and restore a setting on every row (measured on single-row
-- writes: both within the noise of the capture without SECURITY DEFINER).
--
-- The wake-up: a NOTIFY makes every notifying commit take a global lock, so it is sent only
-- while a listener is idle and waiting: npd_sync.waiting > 0 (one cheap read for every writer)
-- and the listener still holding the advisory lock {wake_lock} it took when it started
-- waiting (checked only then; a listener that died releases it with its connection). The
-- check is written out in each function: calling a shared plpgsql function costs a writer
-- measurably more. Never
-- when PostgreSQL's notification queue is half full, so that a listener that stopped reading
-- cannot make the application's commits fail. See listener/capture/notify.py. Nothing here calls out
-- of the database or raises for sync reasons.

DROP TRIGGER IF EXISTS npd_sync_insert ON {table};
DROP TRIGGER IF EXISTS npd_sync_update ON {table};
DROP TRIGGER IF EXISTS npd_sync_rekey ON {table};
DROP TRIGGER IF EXISTS npd_sync_delete ON {table};
DROP TRIGGER IF EXISTS npd_sync_truncate ON {table};

CREATE OR REPLACE FUNCTION npd_sync.changed_{id}() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER AS {fn}
BEGIN
    INSERT INTO npd_sync.changes (table_id, row_key)
    VALUES ({id}, NEW.{key}::pg_catalog.text);
    IF pg_catalog.pg_sequence_last_value('npd_sync.waiting') OPERATOR(pg_catalog.>) 0
       AND NOT pg_catalog.pg_try_advisory_xact_lock_shared({wake_lock})
       AND pg_catalog.pg_notification_queue_usage() OPERATOR(pg_catalog.<) 0.5 THEN
        PERFORM pg_catalog.pg_notify('{channel}', '');
    END IF;
    RETURN NULL;
END
{fn};

CREATE OR REPLACE FUNCTION npd_sync.rekeyed_{id}() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER AS {fn}
BEGIN
    IF (NEW.{key} OPERATOR(pg_catalog.=) OLD.{key}) IS NOT TRUE THEN
        INSERT INTO npd_sync.changes (table_id, row_key, archive_id)
        VALUES ({id}, OLD.{key}::pg_catalog.text, OLD.monday_id::pg_catalog.text),
               ({id}, NEW.{key}::pg_catalog.text, NULL);
        IF pg_catalog.pg_sequence_last_value('npd_sync.waiting') OPERATOR(pg_catalog.>) 0
           AND NOT pg_catalog.pg_try_advisory_xact_lock_shared({wake_lock})
           AND pg_catalog.pg_notification_queue_usage() OPERATOR(pg_catalog.<) 0.5 THEN
            PERFORM pg_catalog.pg_notify('{channel}', '');
        END IF;
    END IF;
    RETURN NULL;
END
{fn};

CREATE OR REPLACE FUNCTION npd_sync.deleted_{id}() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER AS {fn}
BEGIN
    INSERT INTO npd_sync.changes (table_id, row_key, archive_id)
    VALUES ({id}, OLD.{key}::pg_catalog.text, OLD.monday_id::pg_catalog.text);
    IF pg_catalog.pg_sequence_last_value('npd_sync.waiting') OPERATOR(pg_catalog.>) 0
       AND NOT pg_catalog.pg_try_advisory_xact_lock_shared({wake_lock})
       AND pg_catalog.pg_notification_queue_usage() OPERATOR(pg_catalog.<) 0.5 THEN
        PERFORM pg_catalog.pg_notify('{channel}', '');
    END IF;
    RETURN NULL;
END
{fn};

-- By the table's schema and current name, so that renaming it does not break the
-- application's TRUNCATE. Once per statement: a fixed search_path costs nothing here.
CREATE OR REPLACE FUNCTION npd_sync.truncated_{id}() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {fn}
BEGIN
    EXECUTE pg_catalog.format(
        'INSERT INTO npd_sync.changes (table_id, row_key, archive_id)'
        ' SELECT {id}, t.%I::pg_catalog.text, t.monday_id::pg_catalog.text FROM %I.%I t'
        ' WHERE t.monday_id IS NOT NULL',
        {key_literal}, TG_TABLE_SCHEMA, TG_TABLE_NAME);
    IF pg_catalog.pg_sequence_last_value('npd_sync.waiting') OPERATOR(pg_catalog.>) 0
       AND NOT pg_catalog.pg_try_advisory_xact_lock_shared({wake_lock})
       AND pg_catalog.pg_notification_queue_usage() OPERATOR(pg_catalog.<) 0.5 THEN
        PERFORM pg_catalog.pg_notify('{channel}', '');
    END IF;
    RETURN NULL;
END
{fn};

REVOKE ALL ON FUNCTION npd_sync.changed_{id}(), npd_sync.rekeyed_{id}(), npd_sync.deleted_{id}(),
    npd_sync.truncated_{id}() FROM PUBLIC;

CREATE TRIGGER npd_sync_insert AFTER INSERT ON {table} FOR EACH ROW
    WHEN (pg_catalog.sha256(pg_catalog.convert_to(
        pg_catalog.current_setting('npd_sync.origin', true), 'UTF8')) IS DISTINCT FROM {mark})
    EXECUTE FUNCTION npd_sync.changed_{id}();
CREATE TRIGGER npd_sync_update AFTER UPDATE OF {data_columns} ON {table} FOR EACH ROW
    WHEN (pg_catalog.sha256(pg_catalog.convert_to(
        pg_catalog.current_setting('npd_sync.origin', true), 'UTF8')) IS DISTINCT FROM {mark})
    EXECUTE FUNCTION npd_sync.changed_{id}();
CREATE TRIGGER npd_sync_rekey AFTER UPDATE OF {key} ON {table} FOR EACH ROW
    WHEN (pg_catalog.sha256(pg_catalog.convert_to(
        pg_catalog.current_setting('npd_sync.origin', true), 'UTF8')) IS DISTINCT FROM {mark})
    EXECUTE FUNCTION npd_sync.rekeyed_{id}();
CREATE TRIGGER npd_sync_delete AFTER DELETE ON {table} FOR EACH ROW
    WHEN (pg_catalog.sha256(pg_catalog.convert_to(
        pg_catalog.current_setting('npd_sync.origin', true), 'UTF8')) IS DISTINCT FROM {mark})
    EXECUTE FUNCTION npd_sync.deleted_{id}();
CREATE TRIGGER npd_sync_truncate BEFORE TRUNCATE ON {table} FOR EACH STATEMENT
    WHEN (pg_catalog.sha256(pg_catalog.convert_to(
        pg_catalog.current_setting('npd_sync.origin', true), 'UTF8')) IS DISTINCT FROM {mark})
    EXECUTE FUNCTION npd_sync.truncated_{id}();
