-- ELSE schema, version 14: links found by the queue id they lead to within a time window.
--
-- The rollups ask, for every message received in the hours they refresh, whether a content filter
-- or a relay re-injected it: a link to its queue id within a day of its life. Over (to_queue_id)
-- alone PostgreSQL preferred the unique index, which leads with the time and so read every link of
-- the day for each message: on dense traffic (245,000 lines) that one check took 6.6 s of each
-- refresh, half of an import's database time (docs/benchmarks.md, "Where an import's time
-- goes"). With the time beside the queue id, the check is one index probe.
CREATE INDEX links_to_queue_id_ts_idx ON links (to_queue_id, ts);
-- It answers everything the index on the queue id alone answered.
DROP INDEX links_to_queue_id_idx;
