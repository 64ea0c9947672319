//! Content-filter re-injection, counted once.
//!
//! With a content filter (amavis on 127.0.0.1:10024 re-injecting on :10025), one e-mail is two
//! queue ids on the same server: the first is "delivered" to the filter (`status=sent (250 … queued
//! as B)`), the second is "received" again from localhost. pflogsumm counts both (its FAQ says so):
//! received, delivered and their bytes are inflated by the number of re-injections. The correlator
//! records each such hop as a link of kind `content_filter` (or `relay` when it goes to the same
//! host); reports and rollups count the first queue id's reception and the second's delivery only.
//! One definition for both, so that a dashboard's totals and `elsed report` agree.

/// SQL: the delivery `d` handed the message to a filter on its own server (a hop, not a delivery).
pub fn handoff(d: &str) -> String {
    format!(
        "({d}.queued_as IS NOT NULL AND EXISTS (
            SELECT 1 FROM links l JOIN servers s ON s.id = l.from_server_id
            WHERE l.from_uid = {d}.message_uid AND l.to_queue_id = {d}.queued_as
              AND l.kind IN ('content_filter', 'relay') AND l.to_host = s.name))"
    )
}

/// SQL: the message `m` is a filter's re-injection of a message of the same server.
pub fn reinjected(m: &str) -> String {
    format!(
        "EXISTS (
            SELECT 1 FROM links l JOIN servers s ON s.id = l.from_server_id
            WHERE l.to_queue_id = {m}.queue_id AND l.from_server_id = {m}.server_id
              AND l.kind IN ('content_filter', 'relay') AND l.to_host = s.name
              AND l.ts BETWEEN {m}.first_seen - interval '1 day' AND {m}.last_seen + interval '1 day')"
    )
}

/// SQL: the delivery `d` is local(8) forwarding to another address (`forwarded as`), which
/// pflogsumm counts as "forwarded", not "delivered".
pub fn forwarded(d: &str) -> String {
    format!("({d}.status = 'sent' AND {d}.status_text LIKE '%forwarded as %')")
}
