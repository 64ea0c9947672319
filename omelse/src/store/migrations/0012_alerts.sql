-- ELSE schema, version 12: delivery insights and alerts (elsed's alerts/, evaluated by `elsed serve`).
--
-- The detectors find conditions; the lifecycle turns them into alerts that open once, update while
-- the condition holds and resolve by themselves; the channels' outbox carries each open and resolve
-- to e-mail, webhooks and Alertmanager. Nothing here is written on rsyslog's path.

-- One row per episode of one condition (`rule`, `key`): at most one open at a time, and a condition
-- that returns shortly after it resolved reopens the same row (`occurrences` counts them).
CREATE TABLE alerts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The detector (`destination`, `blocklist`, `silent`, …) and what it is about within it
    -- (`out1/example.net`): the identity of the condition.
    rule           text NOT NULL,
    key            text NOT NULL,
    -- What the scope of the callers is checked against: the server the condition is on, the
    -- group domain it is about (either may be absent).
    server_id      integer,
    domain         text,
    severity       text NOT NULL CHECK (severity IN ('warning', 'critical')),
    state          text NOT NULL CHECK (state IN ('open', 'resolved')),
    title          text NOT NULL,
    -- The latest evidence: counts, the remote replies, the messages (search links).
    evidence       jsonb NOT NULL DEFAULT '{}',
    opened_at      timestamptz NOT NULL,
    -- The last evaluation that found the condition (resolution waits `clear_minutes` past it).
    held_at        timestamptz NOT NULL,
    resolved_at    timestamptz,
    occurrences    integer NOT NULL DEFAULT 1,
    acknowledged_at timestamptz,
    acknowledged_by text,
    silenced_until timestamptz,
    silenced_by    text,
    -- The channels were told of this episode's opening (so they are told of its resolution).
    notified       boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX alerts_open_key ON alerts (rule, key) WHERE state = 'open';
CREATE INDEX ON alerts (rule, key, resolved_at);
CREATE INDEX ON alerts (opened_at);

-- What happened to each alert, with the evidence of the moment (its history).
CREATE TABLE alert_events (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL,
    kind     text NOT NULL
             CHECK (kind IN ('opened', 'reopened', 'updated', 'resolved', 'acknowledged', 'silenced', 'unsilenced')),
    -- A user's login for acknowledgements and silences, NULL for the evaluator.
    actor    text,
    details  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX ON alert_events (alert_id, at);

-- The channels' outbox: one row per (alert event, channel), sent with retries and back-off by
-- whichever `elsed serve` claims it first.
CREATE TABLE alert_notifications (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id        bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    -- `open` or `resolve`.
    event           text NOT NULL CHECK (event IN ('open', 'resolve')),
    -- `email`, `webhook:<n>`, `alertmanager:<n>` (the position in the configuration).
    channel         text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL,
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL,
    sent_at         timestamptz,
    -- Given up after the configured attempts.
    failed          boolean NOT NULL DEFAULT false,
    last_error      text
);
CREATE INDEX ON alert_notifications (next_attempt_at) WHERE sent_at IS NULL AND NOT failed;

-- Delivery attempts per finished hour, server and recipient domain: the baseline of the
-- destination detector (the same hours of the previous days), rolled by the evaluator once an
-- hour is over, so that no cycle reads more than its own window of `deliveries`.
CREATE TABLE alert_destination_hourly (
    hour      timestamptz NOT NULL,
    server_id integer NOT NULL,
    domain    text NOT NULL,
    attempts  integer NOT NULL,
    failures  integer NOT NULL,
    PRIMARY KEY (server_id, domain, hour)
);
CREATE INDEX ON alert_destination_hourly (hour);

-- The hours already rolled into alert_destination_hourly.
CREATE TABLE alert_rolled_hours (
    hour timestamptz PRIMARY KEY
);

-- What the evaluator saw of each server's last line at its previous cycle: a last line that does
-- not move is silence, one that moves but stays far behind the clock is ingest lag.
CREATE TABLE alert_server_watch (
    server_id   integer PRIMARY KEY,
    last_seen   timestamptz,
    observed_at timestamptz NOT NULL,
    -- When last_seen last moved.
    moved_at    timestamptz NOT NULL
);
