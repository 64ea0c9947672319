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
use crate::recipient_lookup::{newest_keys, recipient_match_per_column, MessagesOfRecipients, RecipientLookup};
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
    let any = |parts: Vec<String>| format!("({})", parts.join(" OR "));
    match filter.op {
        TextOp::Not => {
            let is = TextFilter {
                op: TextOp::Is,
                value: filter.value.clone(),
            };
            format!(
                "NOT coalesce({}, false)",
                any(address_condition_per_column(q, columns, &is))
            )
        }
        _ => any(address_condition_per_column(q, columns, filter)),
    }
}

/// Each column's condition of [`address_condition`] for `is`, `contains` and `starts` (`not`
/// is asked as `is`), on one bound value.
pub fn address_condition_per_column(q: &mut Query, columns: &[&str], filter: &TextFilter) -> Vec<String> {
    let value = filter.value.trim();
    let each = |f: &dyn Fn(&str) -> String| columns.iter().map(|c| f(c)).collect();
    match filter.op {
        TextOp::Is | TextOp::Not => {
            if value == "<>" {
                each(&|c| format!("{c} = ''"))
            } else if let Some(domain) = value.strip_prefix('@') {
                let p = q.bind(domain.to_lowercase());
                each(&|c| format!("else_domain({c}) = {p}"))
            } else {
                let p = q.bind(strip_angles(value).to_lowercase());
                each(&|c| format!("lower({c}) = {p}"))
            }
        }
        TextOp::Contains | TextOp::Starts => {
            let p = q.bind(like_pattern(filter.op, strip_angles(value)));
            each(&|c| format!("lower({c}) LIKE {p}"))
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

impl ServerRef {
    /// `column` (a server id) is this server; a name in any case.
    fn condition(&self, q: &mut Query, column: &str) -> String {
        match self {
            ServerRef::Id(id) => format!("{column} = {}", q.bind(*id)),
            ServerRef::Name(name) => {
                let name = q.bind(name.trim().to_owned());
                format!("{column} IN (SELECT id FROM servers WHERE lower(name) = lower({name}))")
            }
        }
    }
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
    /// How a recipient condition finds its messages ([`crate::recipient_lookup::choose`] sets
    /// it for a page; the default suits an exact address and an export).
    pub recipient_lookup: RecipientLookup,
}

/// The recipients of the message aliased `m` (a correlated subquery's FROM and join).
fn recipients_of(m: &str) -> String {
    format!("recipients r WHERE r.message_started_at = {m}.started_at AND r.message_uid = {m}.uid")
}

impl MessageFilter {
    /// Adds the conditions on `messages m` (joined with `servers s`) to `q`, and returns the
    /// relation of a recipient condition's messages when `m` is not `messages m`; refuses values
    /// that cannot be searched for (an unknown status, a bad network).
    pub fn apply(&self, q: &mut Query) -> Result<Option<MessagesOfRecipients>, FilterError> {
        let mut relation = None;
        if let Some(text) = &self.quick {
            let condition = quick_condition(q, text);
            q.and(condition);
        }
        if let Some(sender) = &self.sender {
            let condition = address_condition(q, &["m.sender"], sender);
            q.and(condition);
        }
        if let Some(recipient) = &self.recipient {
            let per_column = recipient_match_per_column(q, recipient);
            let matches = format!("({})", per_column.join(" OR "));
            // `not`: no recipient is that one (rather than "some recipient is another one").
            // `OFFSET 0` keeps each form as written: PostgreSQL would otherwise choose between
            // them from a join estimate that is wrong by orders of magnitude (recipient_lookup).
            match (recipient.op, self.recipient_lookup) {
                (TextOp::Not, _) => q.and(format!(
                    "NOT EXISTS (SELECT 1 FROM {} AND {matches})",
                    recipients_of("m")
                )),
                (_, RecipientLookup::EachMessage) => q.and(format!(
                    "EXISTS (SELECT 1 FROM {} AND {matches} OFFSET 0)",
                    recipients_of("m")
                )),
                (_, RecipientLookup::Recipients) => relation = Some(MessagesOfRecipients::All { matches }),
                (_, RecipientLookup::NewestRecipients) => {
                    let newest = newest_keys(&per_column);
                    relation = Some(MessagesOfRecipients::Newest { matches, newest })
                }
                (_, RecipientLookup::RecipientsSince(since)) => {
                    relation = Some(MessagesOfRecipients::Since { matches, since })
                }
            }
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
        if let Some(server) = &self.server {
            let condition = server.condition(q, "m.server_id");
            q.and(condition);
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
        Ok(relation)
    }
}

/// The state a refused entry has: its status filter is this one.
pub const REFUSED_STATE: &str = "rejected";
/// The queue id a refused entry shows: Postfix's own word for mail that never had one.
pub const REFUSED_QUEUE_ID: &str = "NOQUEUE";
/// How long a client has to come back after a temporary refusal (a greylisting deferral) for
/// the refusal to count as retried: Postfix's default `maximal_queue_lifetime`.
const RETRY_WINDOW: &str = "5 days";

impl MessageFilter {
    /// Adds the conditions on `rejects r` of the refused mail this filter finds: mail refused
    /// before it had a queue id (`NOQUEUE: reject:` at CONNECT, HELO, MAIL, RCPT or DATA; from
    /// smtpd, postscreen, a policy service or a milter). A temporary refusal whose sender and
    /// recipient came back within [`RETRY_WINDOW`] (the usual greylisting dance) is left out:
    /// the message that followed it is the answer. Returns `false` when the filter can only find
    /// messages (a Message-ID, a queue id, a flow, a size, a status other than `rejected`).
    /// Refuses the values [`MessageFilter::apply`] refuses.
    pub fn apply_to_refusals(&self, q: &mut Query) -> Result<bool, FilterError> {
        if let Some(flow) = &self.flow {
            if !FLOWS.contains(&flow.as_str()) {
                return refuse("flow", format!("'{flow}' is not one of {}", FLOWS.join(", ")));
            }
            return Ok(false);
        }
        if let Some(status) = &self.status {
            if !statuses().contains(&status.as_str()) {
                return refuse("status", format!("'{status}' is not one of {}", statuses().join(", ")));
            }
            if status != REFUSED_STATE {
                return Ok(false);
            }
        }
        let only_messages = |id: &Option<TextFilter>| id.as_ref().is_some_and(|f| f.op != TextOp::Not);
        if self.quick.is_some()
            || only_messages(&self.message_id)
            || only_messages(&self.queue_id)
            || self.size_min.is_some()
            || self.size_max.is_some()
        {
            return Ok(false);
        }
        q.and("r.action = 'reject' AND r.message_uid IS NULL");
        q.and(format!(
            "NOT (r.code BETWEEN 400 AND 499 AND EXISTS (
                 SELECT 1 FROM recipients retry_r
                 JOIN messages retry_m ON retry_m.started_at = retry_r.message_started_at
                                      AND retry_m.uid = retry_r.message_uid
                 WHERE lower(retry_r.address) = lower(r.recipient)
                   AND retry_r.message_started_at > r.ts
                   AND retry_r.message_started_at < r.ts + interval '{RETRY_WINDOW}'
                   AND lower(retry_m.sender) = lower(r.sender)))"
        ));
        if let Some(sender) = &self.sender {
            let condition = address_condition(q, &["r.sender"], sender);
            q.and(condition);
        }
        if let Some(recipient) = &self.recipient {
            let condition = address_condition(q, &["r.recipient"], recipient);
            q.and(condition);
        }
        if let Some(client) = &self.client {
            let condition = client_condition(q, "r.client_ip", "r.client_name", client, "client")?;
            q.and(condition);
        }
        if let Some(server) = &self.server {
            let condition = server.condition(q, "r.server_id");
            q.and(condition);
        }
        q.and_bound("r.ts >= {}", self.since);
        q.and_bound("r.ts < {}", self.until);
        Ok(true)
    }
}

/// What an entry of a search is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SearchEntryKind {
    /// A message Postfix queued (one life of a queue id on one server).
    Message,
    /// Mail Postfix refused before queueing it (`NOQUEUE: reject:`): `refusal` says why.
    Refused,
}

/// Why mail was refused: the reply Postfix gave, at which stage, to what.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Refusal {
    /// The SMTP reply code (5xx: for good; 4xx: come back later).
    pub code: Option<i32>,
    /// The enhanced status code (RFC 3463), `5.1.1`.
    pub enhanced: Option<String>,
    /// The reply text.
    pub reason: String,
    /// The SMTP stage: CONNECT, EHLO, MAIL, RCPT, DATA…
    pub stage: String,
    /// The recipient refused, when the client had named one.
    pub recipient: Option<String>,
    /// What the client said in HELO/EHLO.
    pub helo: Option<String>,
}

impl Refusal {
    /// `550 5.1.1 <x>: Recipient address rejected: …`, as Postfix replied.
    pub fn reply(&self) -> String {
        let parts: Vec<String> = [
            self.code.map(|c| c.to_string()),
            self.enhanced.clone(),
            Some(self.reason.clone()),
        ]
        .into_iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .collect();
        parts.join(" ")
    }
}

/// One entry of a search: a message, or mail refused before it was queued.
#[derive(Debug, Clone)]
pub struct EntryRow {
    /// For a refused entry: its time as `first_seen`/`last_seen`, `NOQUEUE` as queue id, state
    /// `rejected`, its log line's key as uid.
    pub row: MessageRow,
    pub refusal: Option<Refusal>,
}

impl EntryRow {
    /// The columns [`EntryRow::from_row`] reads from [`entries_from_where`]'s `m` and `s`.
    pub const COLUMNS: &'static str = "m.started_at, m.uid, m.server_id, s.name, m.queue_id, m.message_id, \
         m.sender, m.size, host(m.client_ip), m.client_name, m.first_seen, m.last_seen, m.flow, m.state, \
         m.state_reason, m.kind, m.code, m.enhanced, m.reason, m.stage, m.refused_recipient, m.helo";

    pub fn from_row(row: &Row) -> EntryRow {
        let refused = row.get::<_, &str>(15) == "refused";
        EntryRow {
            row: MessageRow::from_row(row),
            refusal: refused.then(|| Refusal {
                code: row.get(16),
                enhanced: row.get(17),
                reason: row.get::<_, Option<String>>(18).unwrap_or_default(),
                stage: row.get::<_, Option<String>>(19).unwrap_or_default(),
                recipient: row.get(20),
                helo: row.get(21),
            }),
        }
    }

    pub fn kind(&self) -> SearchEntryKind {
        if self.refusal.is_some() {
            SearchEntryKind::Refused
        } else {
            SearchEntryKind::Message
        }
    }
}

/// `FROM … WHERE …` of what `filter` finds within `scope`: the messages and the refused mail,
/// as one relation `m` (the columns of `messages` that searches read, a `kind`, and the refusal's
/// reply) joined with `servers s`. Sorting and paging on `m` merge both kinds in time order;
/// `m.kind, m.uid` breaks ties. For counting and exports; a page takes [`entries_page_from_where`].
pub fn entries_from_where(scope: &Scope, filter: &MessageFilter) -> Result<(String, Query), FilterError> {
    entries_from(scope, filter, None)
}

/// [`entries_from_where`] for the first `rows` entries in `order_by` (an `ORDER BY` on `m`'s
/// columns): each kind is sorted and cut to `rows` on its own before the two are merged. Over
/// the union as a whole PostgreSQL cannot walk the messages' `first_seen` index newest first
/// (a branch with a join is planned apart, without the order), so a big domain's page meant
/// reading and sorting every one of its messages: 3.5 s for the biggest of 3 million messages.
pub fn entries_page_from_where(
    scope: &Scope,
    filter: &MessageFilter,
    order_by: &str,
    rows: i64,
) -> Result<(String, Query), FilterError> {
    entries_from(scope, filter, Some((order_by, rows)))
}

/// The statement that finds the bound of a page of `rows` newest entries when `filter` reads the
/// newest recipients ([`RecipientLookup::NewestRecipients`]), with its parameters; `None` for
/// any other lookup. Its answer (a time, or `NULL`: no bound) makes the lookup
/// [`RecipientLookup::RecipientsSince`] (or [`RecipientLookup::Recipients`]).
pub fn newest_bound_query(
    scope: &Scope,
    filter: &MessageFilter,
    rows: i64,
) -> Result<Option<(String, Query)>, FilterError> {
    let mut q = Query::default();
    let Some(relation) = filter.apply(&mut q)? else {
        return Ok(None);
    };
    let visible = scope.messages_condition(&mut q, "m");
    q.and(visible);
    let messages_where = q.take_where_clause();
    Ok(relation.bound_sql(&messages_where, rows).map(|sql| (sql, q)))
}

fn entries_from(
    scope: &Scope,
    filter: &MessageFilter,
    page: Option<(&str, i64)>,
) -> Result<(String, Query), FilterError> {
    // Each branch as a relation `m` of the union's columns, sorted and cut when asked.
    let branch = |select: String| match page {
        Some((order_by, rows)) => format!("(SELECT * FROM ({select}) m {order_by} LIMIT {rows})"),
        None => select,
    };
    let mut q = Query::default();
    let of_recipients = filter.apply(&mut q)?;
    let visible = scope.messages_condition(&mut q, "m");
    q.and(visible);
    let messages_where = q.take_where_clause();
    let messages = of_recipients.map_or_else(
        || "messages m".to_owned(),
        |relation| relation.sql(&messages_where, page.map(|(_, rows)| rows)),
    );
    let mut from = branch(format!(
        "SELECT 'message'::text AS kind, m.started_at, m.uid, m.server_id, m.queue_id, m.message_id, m.sender,
                m.size, m.client_ip, m.client_name, m.first_seen, m.last_seen, m.flow, m.state, m.state_reason,
                NULL::integer AS code, NULL::text AS enhanced, NULL::text AS reason, NULL::text AS stage,
                NULL::text AS refused_recipient, NULL::text AS helo
         FROM {messages} {messages_where}"
    ));
    if filter.apply_to_refusals(&mut q)? {
        let visible = scope.rejects_condition(&mut q, "r");
        q.and(visible);
        let refusals_where = q.take_where_clause();
        from.push_str(" UNION ALL ");
        from.push_str(&branch(format!(
            "SELECT 'refused'::text AS kind, r.ts AS started_at, r.line_key AS uid, r.server_id,
                    '{REFUSED_QUEUE_ID}'::text AS queue_id, NULL::text AS message_id, r.sender, NULL::bigint AS size,
                    r.client_ip, r.client_name, r.ts AS first_seen, r.ts AS last_seen, NULL::text AS flow,
                    '{REFUSED_STATE}'::text AS state, concat_ws(' ', r.code, r.enhanced, r.reason) AS state_reason,
                    r.code, r.enhanced, r.reason, r.stage, r.recipient AS refused_recipient, r.helo
             FROM rejects r {refusals_where}"
        )));
    }
    Ok((format!("FROM ({from}) m JOIN servers s ON s.id = m.server_id"), q))
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
    let started_at: Vec<Timestamp> = messages.iter().map(|m| m.started_at).collect();
    // The page's time span as values: PostgreSQL plans only the partitions it covers (a page of
    // the newest, one or two days), not every day of the retention. No message: no query.
    let (Some(&first), Some(&last)) = (started_at.iter().min(), started_at.iter().max()) else {
        return Ok(HashMap::new());
    };
    let mut q = Query::default();
    let first = q.bind(first);
    let last = q.bind(last);
    let started = q.bind(started_at);
    let uids = q.bind(messages.iter().map(|m| m.uid).collect::<Vec<i64>>());
    let limit = q.bind(limit.unwrap_or(i64::MAX));
    let visible = scope.recipients_condition(&mut q, "m", "r");
    let sql = format!(
        "SELECT k.uid, r.address, r.orig_address, r.status, r.relay, r.dsn, r.delay, r.status_text,
                r.last_attempt_at, r.total
         FROM unnest({started}::timestamptz[], {uids}::bigint[]) AS k(started_at, uid)
         JOIN messages m ON m.started_at = k.started_at AND m.uid = k.uid
                        AND m.started_at BETWEEN {first} AND {last}
         CROSS JOIN LATERAL (
             SELECT r.*, count(*) OVER () AS total FROM recipients r
             WHERE r.message_started_at = k.started_at AND r.message_uid = k.uid
               AND r.message_started_at BETWEEN {first} AND {last} AND {visible}
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
        let relation = filter.apply(&mut q).unwrap();
        let params = q.params.iter().map(|p| format!("{p:?}")).collect();
        let conditions = q.conditions.join(" AND ");
        // A recipient looked up from its recipients is in the relation, not in a condition.
        match relation {
            None => (conditions, params),
            Some(relation) => (format!("FROM {} WHERE {conditions}", relation.sql("", None)), params),
        }
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
