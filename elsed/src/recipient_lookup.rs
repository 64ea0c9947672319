//! How a search by recipient finds its messages: from the matching recipients (all of them, or
//! the newest only), or by reading the messages newest first and checking each one's recipients
//! until the page is full.
//!
//! PostgreSQL cannot be left to choose. It estimates the join of a message with its recipients
//! from the whole tables' statistics, which treat the two key columns (`started_at`, `uid`) as
//! independent: over 3 million messages it took the biggest domain (300,000 messages) for 800,
//! and read and sorted all of them for a page of 50 (2 s); without those statistics it took one
//! address for a tenth of all messages and read them all (2.2 s). Its estimate of the matching
//! recipients alone comes from each partition's statistics, which autovacuum keeps, and is good:
//! the choice is made here from it (docs/benchmarks.md, "Message search latency").

use omelse::parse::Timestamp;
use tokio_postgres::Client;

use crate::message_query::{address_condition_per_column, MessageFilter, TextFilter, TextOp};
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
    /// For a page of the newest messages and an address or a domain: only the matching
    /// recipients of the newest messages, read newest first from the (value, message time)
    /// indexes ([`MessagesOfRecipients::sql`] says how the page stays exact). Any number of
    /// matches; a count or an export reads them all ([`RecipientLookup::Recipients`]).
    NewestRecipients,
    /// [`RecipientLookup::NewestRecipients`] with its bound found beforehand, by a statement of
    /// its own (`web::api::messages`): for a page, the matching recipients of the messages
    /// started at that time or later; for a count, all of them. Given as a value, the bound
    /// lets PostgreSQL leave out the older partitions when it plans the page, and plan it
    /// without parallel workers; as a sub-select it could do neither (docs/benchmarks.md).
    RecipientsSince(Timestamp),
}

/// The relation `m` a recipient condition's messages are read from, once the rest of the
/// search's conditions (its `WHERE` on `m`) are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagesOfRecipients {
    /// The messages of every recipient that `matches` (a condition on `recipients r`).
    All { matches: String },
    /// The same, for a page of the newest: each of `newest` lists the keys of the messages
    /// with a matching recipient in one address column, newest (`started_at`) first.
    Newest { matches: String, newest: Vec<String> },
    /// The messages of every recipient that `matches`, for a page those started `since` or later
    /// ([`RecipientLookup::RecipientsSince`]).
    Since { matches: String, since: Timestamp },
}

/// `keys` (a query of `message_started_at`, `message_uid` pairs) as the relation `m` of their
/// messages, each fetched by its key. Written as a join, even a few tens of thousands of keys
/// were hashed against every message (a seq scan of 30 million for a middling domain); `OFFSET
/// 0` keeps each form as written.
fn messages_of(keys: &str) -> String {
    format!(
        "({keys}) k CROSS JOIN LATERAL (SELECT * FROM messages m
                                       WHERE m.started_at = k.message_started_at AND m.uid = k.message_uid
                                       OFFSET 0) m"
    )
}

fn keys_of(matches: &str) -> String {
    format!("SELECT DISTINCT r.message_started_at, r.message_uid FROM recipients r WHERE {matches} OFFSET 0")
}

impl MessagesOfRecipients {
    /// The relation, for a search whose other conditions on `m` are `where_clause` and, for a
    /// page, that needs its first `page_rows` by `first_seen`, newest first.
    ///
    /// A page of the newest reads only the messages started since a bound. A message's
    /// `first_seen` is never after its `started_at` (a line out of order only makes it earlier),
    /// so if the `page_rows` newest matching messages by `started_at` were first seen at `B` or
    /// later, that many matching messages were first seen at `B` or later: every message of
    /// the page was, and so started at `B` or later. `B` costs a walk of the newest keys that
    /// stops at `page_rows` matching messages; then the recipients started since `B` are read
    /// and sorted (about as many again). Fewer matching messages than that: no bound.
    pub fn sql(&self, where_clause: &str, page_rows: Option<i64>) -> String {
        match (self, page_rows) {
            (MessagesOfRecipients::All { matches }, _)
            | (MessagesOfRecipients::Newest { matches, .. } | MessagesOfRecipients::Since { matches, .. }, None) => {
                messages_of(&keys_of(matches))
            }
            (MessagesOfRecipients::Newest { matches, newest }, Some(rows)) => {
                let bound = newest_bound(newest, where_clause, rows);
                messages_of(&keys_of(&format!("{matches} AND r.message_started_at >= {bound}")))
            }
            // The bound is a time PostgreSQL gave, written out as a literal (no text of the
            // request's): the page's statement keeps the parameters of the count's.
            (MessagesOfRecipients::Since { matches, since }, Some(_)) => messages_of(&keys_of(&format!(
                "{matches} AND r.message_started_at >= '{}'::timestamptz",
                since.to_rfc3339()
            ))),
        }
    }

    /// The bound of a page of the newest ([`MessagesOfRecipients::sql`]) as a statement of its
    /// own, `NULL` when fewer messages than `page_rows` match (then there is none); `None` when
    /// this relation has no such bound.
    pub fn bound_sql(&self, where_clause: &str, page_rows: i64) -> Option<String> {
        match self {
            MessagesOfRecipients::Newest { newest, .. } => Some(format!(
                "SELECT NULLIF({}, '-infinity')",
                newest_bound(newest, where_clause, page_rows)
            )),
            _ => None,
        }
    }
}

/// The oldest `first_seen` of the `rows` newest messages (by `started_at`) that `newest` (each
/// address column's keys) and `where_clause` find, or `-infinity` when fewer match.
fn newest_bound(newest: &[String], where_clause: &str, rows: i64) -> String {
    // Each column's newest matching messages, then the newest of both: PostgreSQL merges
    // ordered scans of one table's partitions, not of a union of two tables'.
    let per_column: Vec<String> = newest
        .iter()
        .map(|keys| {
            format!(
                "(SELECT DISTINCT ON (k.message_started_at, k.message_uid)
                         k.message_started_at, k.message_uid, m.first_seen
                  FROM {} {where_clause}
                  ORDER BY k.message_started_at DESC, k.message_uid DESC LIMIT {rows})",
                messages_of(keys)
            )
        })
        .collect();
    format!(
        "(SELECT CASE WHEN count(*) = {rows} THEN min(b.first_seen) ELSE '-infinity' END
          FROM (SELECT DISTINCT ON (c.message_started_at, c.message_uid) c.first_seen
                FROM ({}) c
                ORDER BY c.message_started_at DESC, c.message_uid DESC LIMIT {rows}) b)",
        per_column.join(" UNION ALL ")
    )
}

/// The keys of the messages that have a recipient matching one of `per_column` (the conditions
/// of [`recipient_match_per_column`], `is`: an address or `@domain`), one query per address
/// column, each read newest first from that column's (value, `message_started_at`,
/// `message_uid`) index so that a page stops after its rows (an `OR` of the columns reads every
/// match through a bitmap, unordered). The original address's ordered index leaves out the
/// recipients without one (schema version 16), so its query does too.
pub fn newest_keys(per_column: &[String]) -> Vec<String> {
    per_column
        .iter()
        .zip(["", " AND r.orig_address IS NOT NULL"])
        .map(|(matches, only)| {
            format!("SELECT r.message_started_at, r.message_uid FROM recipients r WHERE {matches}{only}")
        })
        .collect()
}

/// The recipient address columns a recipient condition looks at: the final address, then the
/// original one (before aliases and forwarding).
const ADDRESS_COLUMNS: [&str; 2] = ["r.address", "r.orig_address"];

/// The condition on `recipients r` that `recipient` (`is`, `contains`, `starts`; `not` is
/// asked as `is`) sets, one per address column ([`ADDRESS_COLUMNS`]), any of which matches.
pub fn recipient_match_per_column(q: &mut Query, recipient: &TextFilter) -> Vec<String> {
    address_condition_per_column(q, &ADDRESS_COLUMNS, recipient)
}

/// Reading the newest recipients costs a few milliseconds more planning (three reads of
/// `recipients` and of `messages` over every partition, instead of one): more than reading a
/// few hundred matches, which an exact address seldom has. The estimate is never below one row
/// per partition and column (60 over 30 days), which alone must not choose it.
const NEWEST_FROM_MATCHES_PER_ROW: f64 = 10.0;

/// Sets `filter.recipient_lookup` for a search that needs its first `rows` entries, the newest
/// first when `newest_first`. Reading the matching recipients costs about as many row visits as
/// there are matches; reading the newest ones about twice `rows`, but only an address or a
/// domain (`is`) has the indexes in that order; reading the messages newest first costs about
/// `rows × messages / matches`. The cheapest is taken, from PostgreSQL's estimates (planning
/// only, no row is read). Returns the estimate of matching recipients (`None`: no recipient
/// condition to look up).
pub async fn choose(
    client: &Client,
    filter: &mut MessageFilter,
    rows: i64,
    newest_first: bool,
) -> Result<Option<f64>, tokio_postgres::Error> {
    let Some(recipient) = filter.recipient.as_ref().filter(|r| r.op != TextOp::Not) else {
        return Ok(None);
    };
    // Not the null sender's `<>` nor a bare `@`: they match empty values, which the original
    // address's ordered index leaves out.
    let ordered = newest_first && recipient.op == TextOp::Is && !["<>", "@"].contains(&recipient.value.trim());
    let mut q = Query::default();
    let matches = recipient_match_per_column(&mut q, recipient).join(" OR ");
    // Both go out at once, in one round trip: the plan's first line (`Append  (cost=… rows=N
    // width=…)`) and how many messages there are.
    let explain = format!("EXPLAIN SELECT 1 FROM recipients r WHERE {matches}");
    let params = q.params();
    let (plan, messages) = tokio::try_join!(
        client.query(&explain, &params),
        client.query_one(
            "SELECT coalesce(sum(c.reltuples) FILTER (WHERE c.reltuples > 0), 0)::float8
             FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'messages'::regclass",
            &[],
        )
    )?;
    let matching = plan.first().map_or(0.0, |line| estimated_rows(line.get(0)));
    let messages: f64 = messages.get(0);
    filter.recipient_lookup = if ordered && matching > NEWEST_FROM_MATCHES_PER_ROW * rows as f64 {
        RecipientLookup::NewestRecipients
    } else if matching * matching > rows as f64 * messages {
        RecipientLookup::EachMessage
    } else {
        RecipientLookup::Recipients
    };
    Ok(Some(matching))
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
