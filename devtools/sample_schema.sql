-- The application's tables as npd-sync expects them (docs/mapping.md, "Prepare the tables"):
-- used by the demo, the tests and the benchmarks.

CREATE TABLE organizations (
    id serial PRIMARY KEY,
    name text NOT NULL,
    notes text,
    address_line1 text,
    address_line2 text,
    city text,
    state text,
    postal_code text,
    country text,
    sync_enabled boolean NOT NULL DEFAULT true,
    sync_direction text NOT NULL DEFAULT 'BIDIRECTIONAL',
    monday_id text,
    sync_status text NOT NULL DEFAULT 'PENDING',
    sync_error text,
    last_synced_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contacts (
    id serial PRIMARY KEY,
    first_name text,
    last_name text,
    email text,
    phone text,
    role_title text,
    notes text,
    -- A contact works at an organization: a connect-boards column on the board, when mapped
    -- (docs/mapping.md, "Relations").
    organization_id integer REFERENCES organizations (id) ON DELETE SET NULL,
    sync_enabled boolean NOT NULL DEFAULT true,
    sync_direction text NOT NULL DEFAULT 'BIDIRECTIONAL',
    monday_id text,
    sync_status text NOT NULL DEFAULT 'PENDING',
    sync_error text,
    last_synced_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now()
);

