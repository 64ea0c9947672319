-- ELSE schema, version 16: a recipient's messages, newest first.
--
-- A page of the messages to an address or a domain needs the newest fifty of them. With an index
-- on the address (or its domain) alone, PostgreSQL either read every match and sorted it, or read
-- the newest messages one by one until fifty matched: for a domain of tens of thousands of
-- recipients among 30 million messages, 600 to 800 ms either way. With the message's key after
-- the value, an index gives a value's recipients newest message first, and the search reads about
-- a page of them (elsed's recipient_lookup, "NewestRecipients").
--
-- The final address's indexes are replaced (an equality lookup uses the new ones the same way).
-- The original address is empty for most recipients: its indexes on the value alone stay (their
-- empty entries deduplicate to almost nothing, and ANALYZE keeps statistics of whole expression
-- indexes only, see version 6), and the ordered ones skip the empty entries, which the newest
-- walk excludes by name.
DROP INDEX IF EXISTS recipients_lower_idx;
CREATE INDEX recipients_address_message ON recipients (lower(address), message_started_at, message_uid);
DROP INDEX IF EXISTS recipients_else_domain_idx;
CREATE INDEX recipients_domain_message ON recipients (else_domain(address), message_started_at, message_uid);
CREATE INDEX recipients_orig_address_message ON recipients (lower(orig_address), message_started_at, message_uid)
    WHERE orig_address IS NOT NULL;
CREATE INDEX recipients_orig_domain_message ON recipients (else_domain(orig_address), message_started_at, message_uid)
    WHERE orig_address IS NOT NULL;
