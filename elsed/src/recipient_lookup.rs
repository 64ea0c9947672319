//! How a search by recipient finds its messages: from the matching recipients, or by reading
//! the messages newest first and checking each one's recipients until the page is full.
//!
//! PostgreSQL cannot be left to choose. It estimates the join of a message with its recipients
//! from the whole tables' statistics, which treat the two key columns (`started_at`, `uid`) as
//! independent: over 3 million messages it took the biggest domain (300,000 messages) for 800,
//! and read and sorted all of them for a page of 50 (2 s); without those statistics it took one
//! address for a tenth of all messages and read them all (2.2 s). Its estimate of the matching
//! recipients alone comes from each partition's statistics, which autovacuum keeps, and is good:
//! the choice is made here from it (docs/benchmarks.md, "Message search latency").

use tokio_postgres::Client;

use crate::message_query::{address_condition, MessageFilter, TextFilter, TextOp};
use crate::sql::Query;

/// How the messages of a recipient condition are found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RecipientLookup {
    /// The matching recipients first (their indexes), then their messages: few matches.
    #[default]
    Recipients,
    /// The messages in the page's order, each checked against its recipients until the page
    /// is full: so many matches that a page is found among the newest messages.
    EachMessage,
}

/// The condition on `recipients r` that `recipient` (`is`, `contains`, `starts`; `not` is
/// asked as `is`) sets.
pub fn recipient_match(q: &mut Query, recipient: &TextFilter) -> String {
    let positive = TextFilter {
        op: if recipient.op == TextOp::Not {
            TextOp::Is
        } else {
            recipient.op
        },
        value: recipient.value.clone(),
    };
    address_condition(q, &["r.address", "r.orig_address"], &positive)
}

/// Sets `filter.recipient_lookup` for a search that needs its first `rows` entries. Reading
/// the matching recipients costs about as many row visits as there are matches; reading the
/// messages newest first costs about `rows × messages / matches`. The messages are read newest
/// first when that is the smaller, from PostgreSQL's estimates (planning only, no row is read).
pub async fn choose(client: &Client, filter: &mut MessageFilter, rows: i64) -> Result<(), tokio_postgres::Error> {
    let Some(recipient) = filter.recipient.as_ref().filter(|r| r.op != TextOp::Not) else {
        return Ok(());
    };
    let mut q = Query::default();
    let matches = recipient_match(&mut q, recipient);
    // The plan's first line: `Append  (cost=… rows=N width=…)`.
    let plan = client
        .query(
            &format!("EXPLAIN SELECT 1 FROM recipients r WHERE {matches}"),
            &q.params(),
        )
        .await?;
    let matching = plan.first().map_or(0.0, |line| estimated_rows(line.get(0)));
    let messages: f64 = client
        .query_one(
            "SELECT coalesce(sum(c.reltuples) FILTER (WHERE c.reltuples > 0), 0)::float8
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'messages'::regclass",
            &[],
        )
        .await?
        .get(0);
    filter.recipient_lookup = if matching * matching > rows as f64 * messages {
        RecipientLookup::EachMessage
    } else {
        RecipientLookup::Recipients
    };
    Ok(())
}

/// The `rows=` of a line of `EXPLAIN`'s text.
fn estimated_rows(line: &str) -> f64 {
    line.split_once(" rows=")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_read_from_the_plan() {
        assert_eq!(estimated_rows("Append  (cost=8.73..499.06 rows=61 width=16)"), 61.0);
        assert_eq!(estimated_rows("Seq Scan on x  (cost=0.00..1.00 rows=1 width=4)"), 1.0);
        assert_eq!(estimated_rows("Result"), 0.0);
    }
}
