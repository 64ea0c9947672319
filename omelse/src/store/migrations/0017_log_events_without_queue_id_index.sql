-- ELSE schema, version 17: one index fewer on every stored line.
--
-- `log_events (server_id, queue_id)` (version 1) was meant for finding a message's lines by its
-- queue id, but every reader finds them by the message's key (`message_uid`, indexed) or by
-- time; no query of omelse or elsed filters log_events by queue id. On dense traffic almost
-- every line carries a queue id, so the index cost a B-tree insertion per line for nothing.
DROP INDEX IF EXISTS log_events_server_id_queue_id_idx;
