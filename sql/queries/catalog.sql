-- What npd-sync reads from PostgreSQL's catalog and settings.

-- name: describe_table
-- The columns of a table given its quoted name; no row when there is no such table. `unique`:
-- a valid unique index (or primary key) on the column alone, without a WHERE clause.
SELECT c.oid::regclass::text AS relation,
       a.attname::text AS name,
       pg_catalog.format_type(a.atttypid, a.atttypmod) AS type,
       pg_catalog.format_type(b.oid, NULL) AS base,
       CASE WHEN b.typtype = 'e' THEN
           ARRAY(SELECT e.enumlabel::text FROM pg_catalog.pg_enum e
                  WHERE e.enumtypid = b.oid ORDER BY e.enumsortorder)
       END AS labels,
       coalesce(a.attgenerated <> '', false) AS generated,
       coalesce(a.attnotnull, false) AS not_null,
       EXISTS (SELECT FROM pg_catalog.pg_index i
                WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid
                  AND i.indnkeyatts = 1 AND i.indkey[0] = a.attnum
                  AND i.indpred IS NULL AND i.indexprs IS NULL) AS unique
  FROM pg_catalog.pg_class c
  LEFT JOIN pg_catalog.pg_attribute a
         ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_catalog.pg_type b ON b.oid = coalesce(nullif(t.typbasetype, 0), t.oid)
 WHERE c.oid = pg_catalog.to_regclass($1) AND c.relkind IN ('r', 'p')
 ORDER BY a.attnum;

-- name: server_version
-- The server's version, for check's first line.
SELECT pg_catalog.current_setting('server_version');

-- name: database_now
-- The database's clock: ages are measured against it, never against this machine's.
SELECT now();
