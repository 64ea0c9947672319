-- ELSE schema, version 8: what the web pages of NDRs and greylisting read.
--
-- End users see the greylisting decisions about mail from their addresses as well as to them:
-- senders are kept as Postfix sent them, so they are looked up case-insensitively.
CREATE INDEX ON greylist_decisions (lower(sender), ts);

-- Opt-in/opt-out entries get a comment, as the whitelists have, for the administrators' page.
ALTER TABLE greylist_domain_policy ADD COLUMN comment text NOT NULL DEFAULT '';

-- NDRs by failed recipient address as written (the end users' view compares lower-case).
CREATE INDEX ON ndr_recipients (lower(original_recipient));
CREATE INDEX ON ndrs (lower(postfix_sender));

-- GreyLSE's hot path writes a triplet and a decisions-log row per request. Indexes that only
-- the periodic cleanup or rare statistics filters read are not worth their cost on every write:
-- the cleanup scans the triplets (once per maintenance run), and statistics by domain read the
-- day partitions of their period. Without an index on `last_seen`, a retry updating it is a HOT
-- update (no index touched).
DROP INDEX greylist_triplets_last_seen_idx;
DROP INDEX greylist_triplets_first_seen_idx;
DROP INDEX greylist_decisions_recipient_domain_ts_idx;
