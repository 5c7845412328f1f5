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

-- name: foreign_code
-- Per column of a table given its quoted name, the first piece of code its type would run in
-- this session that belongs to a role without this session's rights, and that role; no row
-- for a column whose type runs none. A type runs code when a value is cast to it or written:
-- its domains' CHECKs and defaults, its own functions (and, through arrays and the types
-- these call, those of the types it is made of), the operators npd-sync may compare it with
-- and its casts from and to text. A domain's owner may add a CHECK at any time: the domain
-- counts as that role's code. Types built into PostgreSQL (oid below 16384) run only its own
-- code, and pinned objects have no pg_depend rows: columns of those types cost nothing here.
WITH RECURSIVE types(attname, oid) AS (
    SELECT a.attname, a.atttypid
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
       AND a.atttypid >= 16384
    UNION
    SELECT c.attname, n.oid
      FROM types c
      JOIN pg_catalog.pg_type t ON t.oid = c.oid
     CROSS JOIN LATERAL (
           SELECT t.typbasetype WHERE t.typtype = 'd'
           UNION ALL
           SELECT t.typelem WHERE t.typelem <> 0 AND t.typlen = -1
           UNION ALL
           SELECT d.refobjid FROM pg_catalog.pg_depend d
            WHERE d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.objid = t.oid
              AND d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass
           UNION ALL
           SELECT d.refobjid
             FROM pg_catalog.pg_constraint k
             JOIN pg_catalog.pg_depend d
               ON d.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
              AND d.objid = k.oid
            WHERE k.contypid = t.oid
              AND d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass
           ) AS n(oid)
     WHERE n.oid >= 16384
),
-- The types, and their constraints, as pg_depend names them.
objects(attname, classid, objid) AS (
    SELECT c.attname, 'pg_catalog.pg_type'::pg_catalog.regclass::oid, c.oid FROM types c
    UNION ALL
    SELECT c.attname, 'pg_catalog.pg_constraint'::pg_catalog.regclass::oid, k.oid
      FROM types c JOIN pg_catalog.pg_constraint k ON k.contypid = c.oid
),
-- What the types' defaults and constraints refer to.
refs(attname, classid, objid) AS (
    SELECT o.attname, d.refclassid, d.refobjid
      FROM objects o
      JOIN pg_catalog.pg_depend d ON d.classid = o.classid AND d.objid = o.objid
),
code(attname, rank, what, owner) AS MATERIALIZED (
    SELECT c.attname, 1, 'the domain ' || t.oid::pg_catalog.regtype::text, t.typowner
      FROM types c JOIN pg_catalog.pg_type t ON t.oid = c.oid
     WHERE t.typtype = 'd'
    UNION ALL
    SELECT c.attname, 2, 'the function ' || f.oid::pg_catalog.regprocedure::text, f.proowner
      FROM types c
      JOIN pg_catalog.pg_type t ON t.oid = c.oid
     CROSS JOIN LATERAL (VALUES (t.typinput), (t.typoutput), (t.typreceive), (t.typsend),
                                (t.typmodin), (t.typmodout)) AS io(fn)
      JOIN pg_catalog.pg_proc f ON f.oid = io.fn
    UNION ALL
    SELECT r.attname, 2, 'the function ' || f.oid::pg_catalog.regprocedure::text, f.proowner
      FROM refs r JOIN pg_catalog.pg_proc f ON f.oid = r.objid
     WHERE r.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
    UNION ALL
    SELECT c.attname, 3, 'the operator ' || o.oid::pg_catalog.regoperator::text, f.proowner
      FROM (SELECT t.attname, o.oid FROM types t
              JOIN pg_catalog.pg_operator o ON o.oprleft = t.oid
            UNION
            SELECT t.attname, o.oid FROM types t
              JOIN pg_catalog.pg_operator o ON o.oprright = t.oid
            UNION
            SELECT r.attname, r.objid FROM refs r
             WHERE r.classid = 'pg_catalog.pg_operator'::pg_catalog.regclass) AS c
      JOIN pg_catalog.pg_operator o ON o.oid = c.oid
      JOIN pg_catalog.pg_proc f ON f.oid = o.oprcode
    UNION ALL
    SELECT c.attname, 4,
           'the cast from ' || k.castsource::pg_catalog.regtype::text
           || ' to ' || k.casttarget::pg_catalog.regtype::text,
           f.proowner
      FROM types c
      JOIN pg_catalog.pg_cast k
        ON (k.castsource = c.oid AND k.casttarget IN ('pg_catalog.text'::pg_catalog.regtype,
                                                      'pg_catalog.varchar'::pg_catalog.regtype))
        OR (k.casttarget = c.oid AND k.castsource IN ('pg_catalog.text'::pg_catalog.regtype,
                                                      'pg_catalog.varchar'::pg_catalog.regtype))
      JOIN pg_catalog.pg_proc f ON f.oid = k.castfunc
)
SELECT DISTINCT ON (c.attname) c.attname::text AS name, c.what, r.rolname::text AS role
  FROM code c
  JOIN pg_catalog.pg_roles r ON r.oid = c.owner
 WHERE NOT pg_catalog.pg_has_role(c.owner, current_user, 'USAGE')
 ORDER BY c.attname, c.rank, c.what;

-- name: server_version
-- The server's version, for check's first line.
SELECT pg_catalog.current_setting('server_version');

-- name: database_now
-- The database's clock: ages are measured against it, never against this machine's.
SELECT now();
