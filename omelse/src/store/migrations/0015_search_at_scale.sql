-- ELSE schema, version 15: what keeps the message search's pages short however big a domain,
-- a sender or a client is (docs/benchmarks.md, "Message search latency").
--
-- A search lists the newest messages and refusals that match. With an index on the searched
-- value alone, PostgreSQL either read every match and sorted them (a big domain: hundreds of
-- thousands of rows), or read the newest messages one by one until fifty matched (a middling
-- domain: tens of thousands); 80 ms to 2 s over 3 million messages, growing with the data. An
-- index on the value and the time gives the newest matches first, about fifty rows read whatever
-- the size. Each replaces the index on the value alone (equality lookups use it the same way),
-- so the writer keeps as many indexes to maintain, plus one for the client's name.
--
-- The refusals (`NOQUEUE: reject:`), which every search reads beside the messages, get the same
-- for the domains and the client's name they had no index for at all.
DROP INDEX IF EXISTS messages_else_domain_idx;
CREATE INDEX messages_sender_domain_first_seen ON messages (else_domain(sender), first_seen);
DROP INDEX IF EXISTS messages_lower_idx;
CREATE INDEX messages_sender_first_seen ON messages (lower(sender), first_seen);
DROP INDEX IF EXISTS messages_client_ip_idx;
CREATE INDEX messages_client_ip_first_seen ON messages (client_ip, first_seen);
CREATE INDEX messages_client_name_first_seen ON messages (lower(client_name), first_seen);

DROP INDEX IF EXISTS rejects_client_ip_idx;
CREATE INDEX rejects_client_ip_ts ON rejects (client_ip, ts);
DROP INDEX IF EXISTS rejects_lower_idx;
CREATE INDEX rejects_sender_ts ON rejects (lower(sender), ts);
DROP INDEX IF EXISTS rejects_lower_idx1;
CREATE INDEX rejects_recipient_ts ON rejects (lower(recipient), ts);
CREATE INDEX rejects_sender_domain_ts ON rejects (else_domain(sender), ts);
CREATE INDEX rejects_recipient_domain_ts ON rejects (else_domain(recipient), ts);
CREATE INDEX rejects_client_name_ts ON rejects (lower(client_name), ts);
