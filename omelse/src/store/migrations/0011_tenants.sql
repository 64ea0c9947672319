-- ELSE schema, version 11 (the lead renumbers at merge): what a group member may see of the raw lines.
--
-- A group member sees a line when it belongs to something the scope already lets them see: a
-- line of a visible message (`message_uid`), a visible reject (the reject row has the line's
-- `(ts, line_key)`), or a line of an smtpd session (`session_uid`) that carried one of those.
-- The session of an smtpd line is what the correlator already knows; it is kept with the line,
-- and looked up by session from both sides.
ALTER TABLE log_events ADD COLUMN session_uid bigint;
CREATE INDEX ON log_events (session_uid) WHERE session_uid IS NOT NULL;
CREATE INDEX ON rejects (session_uid) WHERE session_uid IS NOT NULL;
-- A reject's sender counts for a group only when its session authenticated (see elsed's
-- access::scope): the session by uid, without its start time.
CREATE INDEX ON sessions (uid);

-- Lines that belong to nothing (daemon start, warnings) are for administrators, unless an
-- administrator marks a group as owning a server whole: then its members see every line of it.
ALTER TABLE group_servers ADD COLUMN owns_whole boolean NOT NULL DEFAULT false;
