-- ELSE schema, version 5: the web application's accounts, groups and sessions.
--
-- Small tables, written by people rather than by the log pipeline: foreign keys and checks are
-- affordable here and keep the scope rules (who sees which server and domain) consistent.

-- The audit log of active operations is version 4's `audit_log`.

-- Described by administrators; discovered servers have none.
ALTER TABLE servers ADD COLUMN description text;

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login         text NOT NULL,
    name          text NOT NULL DEFAULT '',
    role          text NOT NULL CHECK (role IN ('admin', 'user', 'enduser')),
    -- Argon2id, as a PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
    password_hash text NOT NULL,
    disabled      boolean NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login    timestamptz
);
-- `Alice` and `alice` are one account.
CREATE UNIQUE INDEX users_login_key ON users (lower(login));

CREATE TABLE groups (
    id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE
);

CREATE TABLE group_users (
    group_id bigint NOT NULL REFERENCES groups ON DELETE CASCADE,
    user_id  bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX ON group_users (user_id);

CREATE TABLE group_servers (
    group_id  bigint NOT NULL REFERENCES groups ON DELETE CASCADE,
    server_id integer NOT NULL REFERENCES servers ON DELETE CASCADE,
    PRIMARY KEY (group_id, server_id)
);

-- Compared with else_domain(), which is lower case.
CREATE TABLE group_domains (
    group_id bigint NOT NULL REFERENCES groups ON DELETE CASCADE,
    domain   text NOT NULL CHECK (domain = lower(domain) AND domain <> ''),
    PRIMARY KEY (group_id, domain)
);

-- An end user's own addresses (the Messaging Center): they see mail from or to these.
CREATE TABLE user_addresses (
    user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    address text NOT NULL CHECK (address = lower(address) AND address <> ''),
    PRIMARY KEY (user_id, address)
);

-- Logged-in browsers. The cookie carries a random token; only its SHA-256 is stored, so that a
-- copy of this table (a backup, a replica) opens no session.
CREATE TABLE web_sessions (
    id         bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now(),
    -- The absolute end; the idle timeout is checked against last_seen.
    expires_at timestamptz NOT NULL,
    client_ip  inet,
    user_agent text
);
CREATE INDEX ON web_sessions (user_id);
CREATE INDEX ON web_sessions (expires_at);

-- Failed logins of the last minutes, for the rate limit per login and per client address. In
-- the database rather than in memory: every `elsed serve` behind a load balancer counts the
-- same failures, and a restart does not reset them.
CREATE TABLE login_failures (
    at        timestamptz NOT NULL DEFAULT now(),
    login     text NOT NULL,
    client_ip inet
);
CREATE INDEX ON login_failures (lower(login), at);
CREATE INDEX ON login_failures (client_ip, at);
CREATE INDEX ON login_failures (at);

-- Each user's searches, newest first on their screen.
CREATE TABLE search_history (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    at      timestamptz NOT NULL DEFAULT now(),
    kind    text NOT NULL CHECK (kind IN ('quick', 'extended', 'rejects', 'bulk', 'logs')),
    params  jsonb NOT NULL
);
CREATE INDEX ON search_history (user_id, at DESC);
