-- npd-sync schema, version 8: an entry's last error stored structured (listener/fault.py), a
-- JSON object: {"source": "monday" | "npd-sync" | "database", "message": text, "code": text,
-- "http": integer, "request_id": text}, the last three null where not known.

-- What earlier versions stored, `message code=X http=N request_id=R`, read once here with the
-- patterns `status` and the console used to read it with (a code is cut at a `;`: a reason
-- added after it, "; write-back refused: ...", is the message's). Who said it: Monday where
-- its answer left an HTTP status, a request id or a code of its own; the database where the
-- row could not be written; npd-sync otherwise. (A function of npd-sync's schema, dropped once
-- used: a temporary one would need the TEMP right on the database.)
CREATE FUNCTION npd_sync.fault_of_text(stored text) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
SELECT jsonb_build_object(
           'source', CASE
               WHEN p.http IS NOT NULL OR p.request_id IS NOT NULL
                    OR p.code NOT IN ('BOARD_BUSY', 'COMPLEXITY_BUDGET_SPENT') THEN 'monday'
               WHEN p.message ~ '^(gave up after [0-9]+ attempts: )?(write-back refused:|cannot insert a row for item )'
                    THEN 'database'
               ELSE 'npd-sync' END,
           'message', p.message,
           'code', p.code,
           'http', p.http,
           'request_id', p.request_id)
  FROM (SELECT btrim(regexp_replace(stored, ' (code|http|request_id)=[^\s;]+', '', 'g'))
                   AS message,
               substring(stored FROM ' code=([^\s;]+)') AS code,
               substring(stored FROM ' http=([0-9]{3})(?:[\s;]|$)')::integer AS http,
               substring(stored FROM ' request_id=([^\s;]+)') AS request_id) AS p
 WHERE stored IS NOT NULL
$$;

ALTER TABLE npd_sync.queue
    ALTER COLUMN last_error TYPE jsonb USING npd_sync.fault_of_text(last_error),
    ADD CONSTRAINT queue_last_error_is_a_fault CHECK (last_error IS NULL OR coalesce(
        jsonb_typeof(last_error -> 'message') = 'string'
        AND last_error ->> 'source' IN ('monday', 'npd-sync', 'database'), false));

ALTER TABLE npd_sync.inbox
    ALTER COLUMN last_error TYPE jsonb USING npd_sync.fault_of_text(last_error),
    ADD CONSTRAINT inbox_last_error_is_a_fault CHECK (last_error IS NULL OR coalesce(
        jsonb_typeof(last_error -> 'message') = 'string'
        AND last_error ->> 'source' IN ('monday', 'npd-sync', 'database'), false));

DROP FUNCTION npd_sync.fault_of_text(text);
