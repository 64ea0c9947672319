-- ELSE schema, version 6: the indexes of the web application's searches (elsed/src/web/api).
--
-- Each serves a search the API offers; measured on ingest in docs/benchmarks.md.

-- Log view: substring search over raw lines (`ILIKE '%text%'`), with trigram GIN indexes that
-- `elsed maintain` builds on each finished day's partition (see omelse's store/text_index.rs: one
-- on the parent would cost the writer two thirds of its speed). pg_trgm is a trusted extension:
-- the database owner may create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Recipient searches match the final or the original address, exactly or by domain: each side of
-- the OR needs its index, or the whole table is read.
CREATE INDEX ON recipients (lower(orig_address)) WHERE orig_address IS NOT NULL;
CREATE INDEX ON recipients (else_domain(address));
CREATE INDEX ON recipients (else_domain(orig_address)) WHERE orig_address IS NOT NULL;

-- Sender domain (`@example.com`), and quick search by queue id alone (the existing index leads
-- with the server).
CREATE INDEX ON messages (else_domain(sender));
CREATE INDEX ON messages (queue_id);
