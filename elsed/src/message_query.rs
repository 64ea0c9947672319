//! Finding messages: what a search asks for, turned into SQL conditions, and the rows read back.
//! Shared by `elsed search` (the command line) and the web API (`/messages`, `/rejects`), so that
//! both find the same messages for the same question.
//!
//! Every value reaches PostgreSQL as a bound parameter; only the shape of the query is built here.

use std::collections::HashMap;
use std::net::IpAddr;

use omelse::parse::Timestamp;
use omelse::store;
use serde::Serialize;
use tokio_postgres::{Client, Row};

use crate::access::Scope;
use crate::sql::{like_escape, Query};

/// A filter's value was refused: which field, and why (the CLI prints it, the API answers 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    pub field: &'static str,
    pub message: String,
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FilterError {}

fn refuse<T>(field: &'static str, message: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError {
        field,
        message: message.into(),
    })
}

/// Message states and recipient statuses, as the store writes them.
pub fn statuses() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = store::MESSAGE_STATES.to_vec();
    all.extend(
        store::RECIPIENT_STATUSES
            .iter()
            .filter(|s| !store::MESSAGE_STATES.contains(s)),
    );
    all
}

/// The flows the correlator gives messages.
pub const FLOWS: [&str; 4] = ["inbound", "outbound", "internal", "relayed"];

/// How a text field is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TextOp {
    /// Equal, in any case (`@domain` for a whole domain where the field is an address).
    #[default]
    Is,
    Contains,
    Starts,
    /// The negation of `is`.
    Not,
}

impl TextOp {
    pub const NAMES: [&'static str; 4] = ["is", "contains", "starts", "not"];

    pub fn parse(text: &str) -> Option<TextOp> {
        match text {
            "is" => Some(TextOp::Is),
            "contains" => Some(TextOp::Contains),
            "starts" => Some(TextOp::Starts),
            "not" => Some(TextOp::Not),
            _ => None,
        }
    }
}

/// A value and how to compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextFilter {
    pub op: TextOp,
    pub value: String,
}

impl TextFilter {
    pub fn is(value: impl Into<String>) -> Self {
        TextFilter {
            op: TextOp::Is,
            value: value.into(),
        }
    }
}

/// `<a@b>` → `a@b`.
pub fn strip_angles(text: &str) -> &str {
    text.strip_prefix('<').and_then(|t| t.strip_suffix('>')).unwrap_or(text)
}

/// `192.0.2.0/24`, `2001:db8::/32`: checked here so that PostgreSQL never sees a bad cast.
pub fn is_network(text: &str) -> bool {
    let Some((ip, prefix)) = text.split_once('/') else {
        return false;
    };
    let Ok(ip) = ip.parse::<IpAddr>() else {
        return false;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    prefix.parse::<u8>().is_ok_and(|p| p <= max)
}

/// `LIKE` patterns for `contains` and `starts` (lower case: the columns are compared lowered).
fn like_pattern(op: TextOp, value: &str) -> String {
    let escaped = like_escape(&value.to_lowercase());
    match op {
        TextOp::Contains => format!("%{escaped}%"),
        _ => format!("{escaped}%"),
    }
}

/// A condition on address columns (any of `columns` matches): `is` compares in any case, `@domain`
/// is the whole domain (through `else_domain`, which is indexed), `<>` the null sender.
/// `not` is the negation of `is` (a missing value is "not" anything).
pub fn address_condition(q: &mut Query, columns: &[&str], filter: &TextFilter) -> String {
    let value = filter.value.trim();
    let any = |f: &dyn Fn(&str) -> String| {
        let parts: Vec<String> = columns.iter().map(|c| f(c)).collect();
        format!("({})", parts.join(" OR "))
    };
    match filter.op {
        TextOp::Is | TextOp::Not => {
            let is = if value == "<>" {
                any(&|c| format!("{c} = ''"))
            } else if let Some(domain) = value.strip_prefix('@') {
                let p = q.bind(domain.to_lowercase());
                any(&|c| format!("else_domain({c}) = {p}"))
            } else {
                let p = q.bind(strip_angles(value).to_lowercase());
                any(&|c| format!("lower({c}) = {p}"))
            };
            if filter.op == TextOp::Not {
                format!("NOT coalesce({is}, false)")
            } else {
                is
            }
        }
        TextOp::Contains | TextOp::Starts => {
            let p = q.bind(like_pattern(filter.op, strip_angles(value)));
            any(&|c| format!("lower({c}) LIKE {p}"))
        }
    }
}

/// A condition on an identifier column compared exactly (`message_id`, `queue_id`): `is` uses
/// the column's index; `contains` and `starts` ignore case.
pub fn id_condition(q: &mut Query, column: &str, filter: &TextFilter) -> String {
    match filter.op {
        TextOp::Is => format!("{column} = {}", q.bind(filter.value.clone())),
        TextOp::Not => format!("{column} IS DISTINCT FROM {}", q.bind(filter.value.clone())),
        TextOp::Contains | TextOp::Starts => {
            format!(
                "lower({column}) LIKE {}",
                q.bind(like_pattern(filter.op, &filter.value))
            )
        }
    }
}

/// A condition on a client (`ip` and `name` columns): an address, a network (CIDR, `inet <<=`) or a
/// reverse name; `contains` and `starts` look at the name and the address as text.
pub fn client_condition(
    q: &mut Query,
    ip: &str,
    name: &str,
    filter: &TextFilter,
    field: &'static str,
) -> Result<String, FilterError> {
    let value = filter.value.trim();
    let exact = |q: &mut Query| -> Result<String, FilterError> {
        if let Ok(addr) = value.parse::<IpAddr>() {
            Ok(format!("{ip} = {}", q.bind(addr)))
        } else if value.contains('/') {
            if !is_network(value) {
                return refuse(field, format!("'{value}' is not an address, a network or a name"));
            }
            Ok(format!("{ip} <<= {}::text::inet", q.bind(value.to_owned())))
        } else {
            Ok(format!("lower({name}) = {}", q.bind(value.to_lowercase())))
        }
    };
    Ok(match filter.op {
        TextOp::Is => exact(q)?,
        TextOp::Not => format!("NOT coalesce({}, false)", exact(q)?),
        TextOp::Contains | TextOp::Starts => {
            let p = q.bind(like_pattern(filter.op, value));
            format!("(lower({name}) LIKE {p} OR host({ip}) LIKE {p})")
        }
    })
}

/// The server a search is narrowed to: by id (the API) or by name (the command line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerRef {
    Id(i32),
    Name(String),
}

/// What a message search asks for; every field narrows (AND).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageFilter {
    pub sender: Option<TextFilter>,
    /// Matches the final or the original recipient address of any recipient.
    pub recipient: Option<TextFilter>,
    pub client: Option<TextFilter>,
    pub message_id: Option<TextFilter>,
    pub queue_id: Option<TextFilter>,
    /// Message-ID or queue id, whichever `text` is (see [`MessageFilter::quick`]).
    pub quick: Option<String>,
    pub server: Option<ServerRef>,
    pub flow: Option<String>,
    /// A message state or one recipient's status.
    pub status: Option<String>,
    pub size_min: Option<i64>,
    pub size_max: Option<i64>,
    /// Messages still active at or after this time.
    pub since: Option<Timestamp>,
    /// Messages first seen before this time.
    pub until: Option<Timestamp>,
}

/// The recipients of the message aliased `m` (a correlated subquery's FROM and join).
fn recipients_of(m: &str) -> String {
    format!("recipients r WHERE r.message_started_at = {m}.started_at AND r.message_uid = {m}.uid")
}

impl MessageFilter {
    /// Adds the conditions on `messages m` (joined with `servers s`) to `q`; refuses values that
    /// cannot be searched for (an unknown status, a bad network).
    pub fn apply(&self, q: &mut Query) -> Result<(), FilterError> {
        if let Some(text) = &self.quick {
            let condition = quick_condition(q, text);
            q.and(condition);
        }
        if let Some(sender) = &self.sender {
            let condition = address_condition(q, &["m.sender"], sender);
            q.and(condition);
        }
        if let Some(recipient) = &self.recipient {
            // `not`: no recipient is that one (rather than "some recipient is another one").
            let positive = TextFilter {
                op: if recipient.op == TextOp::Not {
                    TextOp::Is
                } else {
                    recipient.op
                },
                value: recipient.value.clone(),
            };
            let matches = address_condition(q, &["r.address", "r.orig_address"], &positive);
            let exists = format!("EXISTS (SELECT 1 FROM {} AND {matches})", recipients_of("m"));
            q.and(if recipient.op == TextOp::Not {
                format!("NOT {exists}")
            } else {
                exists
            });
        }
        if let Some(client) = &self.client {
            let condition = client_condition(q, "m.client_ip", "m.client_name", client, "client")?;
            q.and(condition);
        }
        if let Some(id) = &self.message_id {
            let id = TextFilter {
                op: id.op,
                value: strip_angles(id.value.trim()).to_owned(),
            };
            let condition = id_condition(q, "m.message_id", &id);
            q.and(condition);
        }
        if let Some(id) = &self.queue_id {
            let id = TextFilter {
                op: id.op,
                value: id.value.trim().to_owned(),
            };
            let condition = id_condition(q, "m.queue_id", &id);
            q.and(condition);
        }
        match &self.server {
            Some(ServerRef::Id(id)) => q.and_bound("m.server_id = {}", Some(*id)),
            Some(ServerRef::Name(name)) => q.and_bound("lower(s.name) = lower({})", Some(name.trim().to_owned())),
            None => {}
        }
        if let Some(flow) = &self.flow {
            if !FLOWS.contains(&flow.as_str()) {
                return refuse("flow", format!("'{flow}' is not one of {}", FLOWS.join(", ")));
            }
            q.and_bound("m.flow = {}", Some(flow.clone()));
        }
        if let Some(status) = &self.status {
            if !statuses().contains(&status.as_str()) {
                return refuse("status", format!("'{status}' is not one of {}", statuses().join(", ")));
            }
            let p = q.bind(status.clone());
            q.and(format!(
                "(m.state = {p} OR EXISTS (SELECT 1 FROM {} AND r.status = {p}))",
                recipients_of("m")
            ));
        }
        q.and_bound("m.size >= {}", self.size_min);
        q.and_bound("m.size <= {}", self.size_max);
        q.and_bound("m.last_seen >= {}", self.since);
        q.and_bound("m.first_seen < {}", self.until);
        Ok(())
    }
}

/// Quick search: a Message-ID (it has an `@` or angle brackets) or, for anything else, a queue id
/// or a Message-ID without `@` (both indexed, so asking for both costs nothing).
fn quick_condition(q: &mut Query, text: &str) -> String {
    let text = text.trim();
    let stripped = strip_angles(text);
    if text.contains('@') || stripped.len() != text.len() {
        format!("m.message_id = {}", q.bind(stripped.to_owned()))
    } else {
        let p = q.bind(text.to_owned());
        format!("(m.queue_id = {p} OR m.message_id = {p})")
    }
}

/// One message (one life of a queue id on one server), as searches list it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MessageRow {
    #[serde(skip)]
    pub started_at: Timestamp,
    #[serde(skip)]
    pub uid: i64,
    pub server_id: i32,
    pub server: String,
    pub queue_id: String,
    pub message_id: Option<String>,
    pub sender: Option<String>,
    pub size: Option<i64>,
    pub client_ip: Option<String>,
    pub client_name: Option<String>,
    /// The client's country (ISO 3166-1 alpha-2) from the GeoIP database, when it lists it.
    pub client_country: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    /// inbound, outbound, internal or relayed.
    pub flow: Option<String>,
    pub state: String,
    /// Why the message ended as it did or waits on hold, as the log said (docs/api.md, "Message
    /// states").
    pub state_reason: Option<String>,
}

impl MessageRow {
    /// The columns [`MessageRow::from_row`] reads, from `messages m JOIN servers s`.
    pub const COLUMNS: &'static str = "m.started_at, m.uid, m.server_id, s.name, m.queue_id, m.message_id, \
         m.sender, m.size, host(m.client_ip), m.client_name, m.first_seen, m.last_seen, m.flow, m.state, \
         m.state_reason";

    pub fn from_row(row: &Row) -> MessageRow {
        Self::from_row_at(row, 0)
    }

    /// The same columns, selected after `offset` others.
    pub fn from_row_at(row: &Row, offset: usize) -> MessageRow {
        let at = |i: usize| offset + i;
        let client_ip: Option<String> = row.get(at(8));
        MessageRow {
            client_country: crate::geo::country_code(client_ip.as_deref()),
            client_ip,
            started_at: row.get(at(0)),
            uid: row.get(at(1)),
            server_id: row.get(at(2)),
            server: row.get(at(3)),
            queue_id: row.get(at(4)),
            message_id: row.get(at(5)),
            sender: row.get(at(6)),
            size: row.get(at(7)),
            client_name: row.get(at(9)),
            first_seen: row.get(at(10)),
            last_seen: row.get(at(11)),
            flow: row.get(at(12)),
            state: row.get(at(13)),
            state_reason: row.get(at(14)),
        }
    }
}

/// The latest status of one recipient of a message.
#[derive(Debug, Clone, Serialize)]
pub struct RecipientRow {
    pub address: String,
    pub orig_address: Option<String>,
    pub status: String,
    pub relay: Option<String>,
    pub dsn: Option<String>,
    pub delay: Option<f64>,
    pub status_text: Option<String>,
    /// The last attempt (or when the recipient was known, before any).
    pub at: Timestamp,
}

/// Recipients of many messages at once, by message uid: at most `limit` each (in address order)
/// and how many there are in all, of those the caller may see
/// ([`Scope::recipients_condition`]).
pub async fn recipients(
    client: &Client,
    scope: &Scope,
    messages: &[MessageRow],
    limit: Option<i64>,
) -> Result<HashMap<i64, (Vec<RecipientRow>, i64)>, tokio_postgres::Error> {
    let mut q = Query::default();
    let started = q.bind(messages.iter().map(|m| m.started_at).collect::<Vec<Timestamp>>());
    let uids = q.bind(messages.iter().map(|m| m.uid).collect::<Vec<i64>>());
    let limit = q.bind(limit.unwrap_or(i64::MAX));
    let visible = scope.recipients_condition(&mut q, "m", "r");
    let sql = format!(
        "SELECT k.uid, r.address, r.orig_address, r.status, r.relay, r.dsn, r.delay, r.status_text,
                r.last_attempt_at, r.total
         FROM unnest({started}::timestamptz[], {uids}::bigint[]) AS k(started_at, uid)
         JOIN messages m ON m.started_at = k.started_at AND m.uid = k.uid
         CROSS JOIN LATERAL (
             SELECT r.*, count(*) OVER () AS total FROM recipients r
             WHERE r.message_started_at = k.started_at AND r.message_uid = k.uid AND {visible}
             ORDER BY r.last_attempt_at, r.address LIMIT {limit}) r"
    );
    let rows = client.query(&sql, &q.params()).await?;
    let mut by_uid: HashMap<i64, (Vec<RecipientRow>, i64)> = HashMap::new();
    for row in rows {
        let entry = by_uid.entry(row.get(0)).or_default();
        entry.1 = row.get(9);
        entry.0.push(RecipientRow {
            address: row.get(1),
            orig_address: row.get(2),
            status: row.get(3),
            relay: row.get(4),
            dsn: row.get(5),
            delay: row.get(6),
            status_text: row.get(7),
            at: row.get(8),
        });
    }
    Ok(by_uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(filter: &MessageFilter) -> (String, Vec<String>) {
        let mut q = Query::default();
        filter.apply(&mut q).unwrap();
        let params = q.params.iter().map(|p| format!("{p:?}")).collect();
        (q.conditions.join(" AND "), params)
    }

    #[test]
    fn values_are_bound_never_spliced() {
        let filter = MessageFilter {
            sender: Some(TextFilter::is("x'; DROP TABLE messages; --@Example.com")),
            client: Some(TextFilter::is("192.0.2.0/24")),
            ..Default::default()
        };
        let (sql, params) = sql(&filter);
        assert!(!sql.contains("DROP"), "{sql}");
        assert_eq!(params.len(), 2);
        assert!(
            sql.contains("lower(m.sender) = $1") && sql.contains("m.client_ip <<= $2::text::inet"),
            "{sql}"
        );
        assert_eq!(params[0], "\"x'; drop table messages; --@example.com\"");
    }

    #[test]
    fn each_operator_has_its_form() {
        let with = |op, value: &str| MessageFilter {
            recipient: Some(TextFilter {
                op,
                value: value.into(),
            }),
            ..Default::default()
        };
        let (domain, params) = sql(&with(TextOp::Is, "@Example.COM"));
        assert!(domain.contains("else_domain(r.address) = $1"), "{domain}");
        assert_eq!(params, ["\"example.com\""]);
        let (contains, params) = sql(&with(TextOp::Contains, "50%_Off"));
        assert!(contains.contains("lower(r.address) LIKE $1"), "{contains}");
        assert_eq!(params, [r#""%50\\%\\_off%""#]);
        let (starts, params) = sql(&with(TextOp::Starts, "bob"));
        assert!(starts.contains("LIKE $1"));
        assert_eq!(params, ["\"bob%\""]);
        let (not, _) = sql(&with(TextOp::Not, "bob@example.com"));
        assert!(not.starts_with("NOT EXISTS"), "{not}");
        let (null_sender, params) = sql(&MessageFilter {
            sender: Some(TextFilter::is("<>")),
            ..Default::default()
        });
        assert_eq!(null_sender, "(m.sender = '')");
        assert!(params.is_empty());
    }

    #[test]
    fn quick_search_tells_message_ids_from_queue_ids() {
        let quick = |text: &str| {
            sql(&MessageFilter {
                quick: Some(text.into()),
                ..Default::default()
            })
        };
        assert_eq!(quick("<a@b>"), ("m.message_id = $1".into(), vec!["\"a@b\"".into()]));
        assert_eq!(quick("a@b").0, "m.message_id = $1");
        assert_eq!(
            quick(" 3A1F42C0D1 "),
            (
                "(m.queue_id = $1 OR m.message_id = $1)".into(),
                vec!["\"3A1F42C0D1\"".into()]
            )
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let bad = |filter: MessageFilter| {
            let mut q = Query::default();
            filter.apply(&mut q).unwrap_err().field
        };
        assert_eq!(
            bad(MessageFilter {
                client: Some(TextFilter::is("10.0.0.0/33")),
                ..Default::default()
            }),
            "client"
        );
        assert_eq!(
            bad(MessageFilter {
                status: Some("lost".into()),
                ..Default::default()
            }),
            "status"
        );
        assert_eq!(
            bad(MessageFilter {
                flow: Some("sideways".into()),
                ..Default::default()
            }),
            "flow"
        );
        assert!(is_network("2001:db8::/32") && !is_network("2001:db8::/129") && !is_network("x/8"));
    }
}
