-- ELSE schema, version 4: SNMP monitoring and control of the Postfix servers, and the audit log
-- of every active operation (queue actions here; other admin actions reuse it).

-- How elsed reaches a server's snmpd. Two users: `read_*` polls, `control_*` acts (SNMPv3:
-- security names; SNMPv2c: none, the communities are secrets). Passphrases and communities are
-- in `secrets`, encrypted by elsed (XChaCha20-Poly1305, key in a root-only file named by
-- [snmp] key_file): a database dump or a read-only SQL account does not reveal them.
CREATE TABLE snmp_agents (
    server_id     integer PRIMARY KEY REFERENCES servers (id) ON DELETE CASCADE,
    enabled       boolean NOT NULL DEFAULT true,
    host          text NOT NULL CHECK (host <> ''),
    port          integer NOT NULL DEFAULT 161 CHECK (port BETWEEN 1 AND 65535),
    version       text NOT NULL CHECK (version IN ('2c', '3')),
    read_user     text,
    control_user  text,
    auth_protocol text NOT NULL DEFAULT 'SHA' CHECK (auth_protocol IN ('SHA', 'SHA-256')),
    priv_protocol text NOT NULL DEFAULT 'AES' CHECK (priv_protocol IN ('AES')),
    secrets       bytea NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CHECK (version = '2c' OR (read_user IS NOT NULL AND control_user IS NOT NULL))
);

-- One row per server per poll, partitioned by day like the other growing tables, so that
-- retention drops it with them. A server that did not answer has reachable = false and NULLs.
CREATE TABLE snmp_samples (
    ts              timestamptz NOT NULL,
    server_id       integer NOT NULL,
    reachable       boolean NOT NULL,
    error           text,
    incoming_count  bigint,
    incoming_bytes  bigint,
    incoming_oldest bigint,
    active_count    bigint,
    active_bytes    bigint,
    active_oldest   bigint,
    deferred_count  bigint,
    deferred_bytes  bigint,
    deferred_oldest bigint,
    hold_count      bigint,
    hold_bytes      bigint,
    hold_oldest     bigint,
    master_alive    boolean,
    load1           real,
    spool_used_pct  smallint,
    -- The verdict of the thresholds at the time ([snmp] of elsed.toml) and why.
    state           text NOT NULL CHECK (state IN ('ok', 'warning', 'down')),
    reasons         text[] NOT NULL DEFAULT '{}',
    PRIMARY KEY (server_id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX ON snmp_samples (ts);

-- Who did what, when, to what, and what came of it.
CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text,
    details jsonb,
    result  text
);
CREATE INDEX ON audit_log (at);
CREATE INDEX ON audit_log (actor, at);
