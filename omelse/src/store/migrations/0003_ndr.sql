-- ELSE schema, version 3: NDRs (non-delivery reports) the Postfix servers copy to elsed over LMTP.
--
-- Partitioned by day of reception like the other growing tables (`ndrs_pYYYYMMDD`), so that
-- retention drops them with the rest. An NDR is kept raw whatever its content: `kind` says what
-- the parser made of it and `problem` why it is flagged.

CREATE SEQUENCE ndrs_id_seq AS bigint;

CREATE TABLE ndrs (
    received_at        timestamptz NOT NULL,
    id                 bigint NOT NULL DEFAULT nextval('ndrs_id_seq'),
    client_ip          inet NOT NULL,
    helo               text,
    protocol           text NOT NULL CHECK (protocol IN ('lmtp', 'smtp')),
    envelope_sender    text NOT NULL,
    envelope_rcpts     text[] NOT NULL,
    -- dsn: an RFC 3464 report; not_dsn: mail without one; malformed: not even a message.
    kind               text NOT NULL CHECK (kind IN ('dsn', 'not_dsn', 'malformed')),
    problem            text,
    subject            text,
    message_id         text,
    -- The NDR's own queue id on the reporting server (`Received: by HOST (Postfix) id QID`).
    ndr_queue_id       text,
    -- Per-message DSN fields.
    reporting_mta      text,
    postfix_queue_id   text,
    postfix_sender     text,
    arrival_date       timestamptz,
    -- The returned original: `headers` (text/rfc822-headers) or `message` (message/rfc822).
    returned           text,
    orig_message_id    text,
    orig_subject       text,
    orig_from          text,
    orig_date          text,
    -- The message of the logs it reports on, once found (see elsed's ndr::store::link).
    message_started_at timestamptz,
    message_uid        bigint,
    linked_by          text CHECK (linked_by IN ('queue_id', 'notification')),
    raw                bytea NOT NULL,
    -- A copy delivered again because the client missed our 250 is the same bytes: not stored twice.
    raw_sha256         bytea NOT NULL,
    PRIMARY KEY (received_at, id)
) PARTITION BY RANGE (received_at);
CREATE INDEX ON ndrs (message_uid) WHERE message_uid IS NOT NULL;
CREATE INDEX ON ndrs (postfix_queue_id);
CREATE INDEX ON ndrs (orig_message_id);
CREATE INDEX ON ndrs (received_at) WHERE message_uid IS NULL;
CREATE INDEX ON ndrs (raw_sha256);

-- One row per recipient block of the report.
CREATE TABLE ndr_recipients (
    ndr_received_at    timestamptz NOT NULL,
    ndr_id             bigint NOT NULL,
    position           integer NOT NULL,
    final_recipient    text,
    original_recipient text,
    action             text,
    status             text,
    remote_mta         text,
    diagnostic_code    text,
    PRIMARY KEY (ndr_received_at, ndr_id, position)
) PARTITION BY RANGE (ndr_received_at);
CREATE INDEX ON ndr_recipients (lower(final_recipient));
