//! `GET /messages/{id}`: one e-mail's whole journey across servers and queue ids (incoming MX →
//! content filter → mailbox, outgoing → relay → remote, re-injection, the notifications it caused),
//! each recipient's attempts with the remote reply, the raw lines of every hop in time order, and
//! the NDRs linked to it.
//!
//! Scope: the message asked for must be visible to the caller (else 404, as if it did not exist).
//! The journey is followed through every hop, but each hop is shown in full only when the caller
//! may see that hop itself (the same rule as a search would apply to it); the others appear as
//! `{server, link_kind, restricted: true}`: a group member learns that their inbound mail came
//! through the outgoing relay of another group, not what else that relay's message carried
//! (its other recipients, its lines). End users see every hop that has their address.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use axum::Json;
use omelse::parse::Timestamp;
use serde::Serialize;
use tokio_postgres::Client;
use utoipa_axum::routes;

use super::logs::LogLine;
use super::messages::{summaries, MessageSummary};
use crate::access::{Caller, Scope};
use crate::message_query::{self, MessageRow};
use crate::sql::Query;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::PathParam;
use crate::web::openapi::ApiRoutes;
use crate::web::AppState;

/// Hops followed at most (a mail loop must not make the answer endless).
pub const MAX_HOPS: usize = 50;
/// Recipients listed per hop.
const MAX_RECIPIENTS: i64 = 1000;
/// Delivery attempts listed at most, all hops together.
const MAX_ATTEMPTS: i64 = 20_000;
/// Log lines listed at most, all hops together.
pub const MAX_LINES: i64 = 10_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MessageDetail {
    pub message: MessageSummary,
    /// In journey order: each hop after the one it came from.
    pub journey: Vec<Hop>,
    /// The lines of every visible hop, in time order.
    pub lines: Vec<LogLine>,
    /// More than [`MAX_LINES`] lines: the first ones only.
    pub lines_truncated: bool,
    pub ndrs: Vec<NdrLink>,
    /// GreyLSE's decisions about the mail of the visible hops, oldest first.
    pub greylist: Vec<super::greylist::GreylistDecision>,
}

/// One queue id on one server (its document, which says what `restricted` implies, is below).
#[derive(Debug, Serialize)]
pub struct Hop {
    pub server: String,
    /// How this hop was reached from the one before it: relay, content_filter, reinjection,
    /// notification; null for the first.
    pub link_kind: Option<String>,
    /// The caller may not see this hop: only its server and how it was reached are shown.
    pub restricted: bool,
    #[serde(flatten)]
    pub detail: Option<HopDetail>,
}

/// The document of [`Hop`]: a hop shown in full (`restricted: false`) carries [`HopDetail`]'s
/// fields, a restricted one only its server and link. (The derived schema of a flattened
/// `Option` would promise the detail's fields on every hop.)
impl utoipa::PartialSchema for Hop {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let place = |restricted: bool| {
            serde_json::json!({
                "type": "object",
                "required": ["server", "link_kind", "restricted"],
                "properties": {
                    "server": {"type": "string"},
                    "link_kind": {"type": ["string", "null"], "description": "How this hop was reached from the \
                        one before it: relay, content_filter, reinjection, notification; null for the first."},
                    "restricted": {"type": "boolean", "enum": [restricted], "description": "The caller may not \
                        see this hop: only its server and how it was reached are shown."},
                },
            })
        };
        serde_json::from_value(serde_json::json!({
            "description": "One queue id on one server: in full, or only where it was when the caller may not see it.",
            "oneOf": [{"allOf": [{"$ref": "#/components/schemas/HopDetail"}, place(false)]}, place(true)],
        }))
        .expect("the schema of a hop is a schema")
    }
}

impl utoipa::ToSchema for Hop {
    fn schemas(schemas: &mut Vec<(String, utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>)>) {
        use utoipa::PartialSchema;
        schemas.push((HopDetail::name().into_owned(), HopDetail::schema()));
        <HopDetail as utoipa::ToSchema>::schemas(schemas);
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HopDetail {
    pub id: String,
    pub queue_id: String,
    pub message_id: Option<String>,
    pub flow: Option<String>,
    pub state: String,
    /// Why the hop ended as it did or waits on hold (docs/api.md, "Message states").
    pub state_reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub first_seen: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub last_seen: Timestamp,
    pub sender: Option<String>,
    pub size: Option<i64>,
    pub client_ip: Option<String>,
    pub client_name: Option<String>,
    pub recipients: Vec<HopRecipient>,
    pub recipient_count: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HopRecipient {
    pub address: String,
    pub orig_address: Option<String>,
    pub status: String,
    pub dsn: Option<String>,
    pub relay: Option<String>,
    pub delay: Option<f64>,
    pub status_text: Option<String>,
    pub attempts: Vec<Attempt>,
}

/// One delivery attempt (a delivery agent's line).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Attempt {
    #[schema(value_type = String, format = DateTime)]
    pub ts: Timestamp,
    pub status: String,
    pub relay: String,
    pub dsn: String,
    pub delay: f64,
    /// Postfix `delays=a/b/c/d`: before the queue manager, in it, connection setup, transmission.
    #[schema(value_type = Vec<Option<f32>>)]
    pub delays: [Option<f32>; 4],
    pub status_text: String,
}

/// An NDR linked to a hop of the journey.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NdrLink {
    pub id: String,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    pub server: String,
    pub reporting_mta: Option<String>,
    pub queue_id: Option<String>,
    pub original_sender: Option<String>,
    pub failed_recipients: Vec<super::ndrs::FailedRecipient>,
    pub subject: Option<String>,
    /// The id of the hop it reports on.
    pub message_id: String,
    /// Not a parsable delivery status notification.
    pub flagged: bool,
}

/// Whether the link's `to_host` (a name from the delivery line, or an ELSE server's name) or its
/// relay's address designates the server aliased `s`: `mx1`, `mx1.example.com`, `[192.0.2.10]`.
fn link_reaches(l: &str, s: &str) -> String {
    format!(
        "(lower({l}.to_host) = lower({s}.name)
          OR lower(split_part({l}.to_host, '.', 1)) = lower({s}.name)
          OR ({s}.address IS NOT NULL AND {l}.relay LIKE '%[' || host({s}.address) || ']%'))"
    )
}

/// A hop found while following the links.
struct Node {
    row: MessageRow,
    link_kind: Option<String>,
    /// The hop this one came from (index in the journey's nodes).
    from: Option<usize>,
}

/// The message `uid` as `scope` lets the caller see it, or 404.
pub async fn detail(client: &Client, scope: &Scope, uid: i64) -> ApiResult<MessageDetail> {
    let mut q = Query::default();
    let id = q.bind(uid);
    q.and(format!("m.uid = {id}"));
    let visible = scope.messages_condition(&mut q, "m");
    q.and(visible);
    let sql = format!(
        "SELECT {} FROM messages m JOIN servers s ON s.id = m.server_id {} LIMIT 1",
        MessageRow::COLUMNS,
        q.where_clause()
    );
    let start = match client.query_opt(&sql, &q.params()).await? {
        Some(row) => MessageRow::from_row(&row),
        None => return Err(ApiError::not_found()),
    };

    let nodes = journey_order(journey(client, start.clone()).await?);
    let uids: Vec<i64> = nodes.iter().map(|n| n.row.uid).collect();
    let visible = visible_uids(client, scope, &uids).await?;
    let shown: Vec<MessageRow> = nodes
        .iter()
        .filter(|n| visible.contains(&n.row.uid))
        .map(|n| n.row.clone())
        .collect();
    let shown_uids: Vec<i64> = shown.iter().map(|m| m.uid).collect();

    let mut recipients = message_query::recipients(client, scope, &shown, Some(MAX_RECIPIENTS)).await?;
    let mut attempts = attempts(client, &shown_uids).await?;
    let journey = nodes
        .into_iter()
        .map(|node| {
            if !visible.contains(&node.row.uid) {
                return Hop {
                    server: node.row.server,
                    link_kind: node.link_kind,
                    restricted: true,
                    detail: None,
                };
            }
            let m = node.row;
            let (list, recipient_count) = recipients.remove(&m.uid).unwrap_or_default();
            let recipients = list
                .into_iter()
                .map(|r| HopRecipient {
                    attempts: attempts.remove(&(m.uid, r.address.to_lowercase())).unwrap_or_default(),
                    address: r.address,
                    orig_address: r.orig_address,
                    status: r.status,
                    dsn: r.dsn,
                    relay: r.relay,
                    delay: r.delay,
                    status_text: r.status_text,
                })
                .collect();
            Hop {
                server: m.server,
                link_kind: node.link_kind,
                restricted: false,
                detail: Some(HopDetail {
                    id: m.uid.to_string(),
                    queue_id: m.queue_id,
                    message_id: m.message_id,
                    flow: m.flow,
                    state: m.state,
                    state_reason: m.state_reason,
                    first_seen: m.first_seen,
                    last_seen: m.last_seen,
                    sender: m.sender,
                    size: m.size,
                    client_ip: m.client_ip,
                    client_name: m.client_name,
                    recipients,
                    recipient_count,
                }),
            }
        })
        .collect();

    let mut lines = lines(client, scope, &shown_uids).await?;
    let lines_truncated = lines.len() as i64 > MAX_LINES;
    lines.truncate(MAX_LINES as usize);
    let servers: HashMap<i64, String> = shown.iter().map(|m| (m.uid, m.server.clone())).collect();
    let ndrs = ndrs(client, scope, &shown_uids, &servers).await?;
    let greylist = super::greylist::greylist_decisions_for_messages(client, scope, &shown_uids).await?;
    let message = summaries(client, scope, vec![start]).await?.remove(0);
    Ok(MessageDetail {
        message,
        journey,
        lines,
        lines_truncated,
        ndrs,
        greylist,
    })
}

/// Every hop linked to `start`, both ways, breadth first (at most [`MAX_HOPS`]).
async fn journey(client: &Client, start: MessageRow) -> ApiResult<Vec<Node>> {
    let mut index: HashMap<i64, usize> = HashMap::from([(start.uid, 0)]);
    let mut nodes = vec![Node {
        row: start,
        link_kind: None,
        from: None,
    }];
    let mut frontier = vec![0];
    while !frontier.is_empty() && nodes.len() < MAX_HOPS {
        let uids: Vec<i64> = frontier.iter().map(|&i| nodes[i].row.uid).collect();
        let mut found = Vec::new();
        // Downstream: where these messages handed the mail (`queued as`, notifications).
        let sql = format!(
            "SELECT l.from_uid, l.kind, true, {}
             FROM links l
             JOIN servers s ON {}
             JOIN messages m ON m.server_id = s.id AND m.queue_id = l.to_queue_id
                  AND m.started_at BETWEEN l.ts - interval '1 hour' AND l.ts + interval '1 hour'
             WHERE l.from_uid = ANY($1)",
            MessageRow::COLUMNS,
            link_reaches("l", "s")
        );
        found.extend(client.query(&sql, &[&uids]).await?);
        // Upstream: the messages whose links point at these (by server and queue id, near in time:
        // short queue ids are reused).
        let server_ids: Vec<i32> = frontier.iter().map(|&i| nodes[i].row.server_id).collect();
        let queue_ids: Vec<&str> = frontier.iter().map(|&i| nodes[i].row.queue_id.as_str()).collect();
        let first: Vec<Timestamp> = frontier.iter().map(|&i| nodes[i].row.first_seen).collect();
        let last: Vec<Timestamp> = frontier.iter().map(|&i| nodes[i].row.last_seen).collect();
        let sql = format!(
            "SELECT k.uid, l.kind, false, {}
             FROM unnest($1::bigint[], $2::int[], $3::text[], $4::timestamptz[], $5::timestamptz[])
                  AS k(uid, server_id, queue_id, first_seen, last_seen)
             JOIN servers ks ON ks.id = k.server_id
             JOIN links l ON l.to_queue_id = k.queue_id
                  AND l.ts BETWEEN k.first_seen - interval '1 hour' AND k.last_seen + interval '1 hour'
                  AND {}
             JOIN messages m ON m.uid = l.from_uid
             JOIN servers s ON s.id = m.server_id",
            MessageRow::COLUMNS,
            link_reaches("l", "ks")
        );
        found.extend(
            client
                .query(&sql, &[&uids, &server_ids, &queue_ids, &first, &last])
                .await?,
        );
        let mut next = Vec::new();
        for row in found {
            let this: i64 = row.get(0);
            let kind: String = row.get(1);
            let downstream: bool = row.get(2);
            let other = MessageRow::from_row_at(&row, 3);
            let other_uid = other.uid;
            let other_index = *index.entry(other_uid).or_insert_with(|| {
                nodes.push(Node {
                    row: other,
                    link_kind: None,
                    from: None,
                });
                next.push(nodes.len() - 1);
                nodes.len() - 1
            });
            // The kind of a link belongs to the hop it leads to.
            let (reached, from) = if downstream {
                (Some(other_index), index.get(&this).copied())
            } else {
                (index.get(&this).copied(), Some(other_index))
            };
            if let Some(reached) = reached {
                nodes[reached].link_kind.get_or_insert(kind);
                if from != Some(reached) {
                    nodes[reached].from = nodes[reached].from.or(from);
                }
            }
            if nodes.len() >= MAX_HOPS {
                break;
            }
        }
        frontier = next;
    }
    Ok(nodes)
}

/// Time order, every hop after the one it came from: a relay's next hop and a bounce's
/// notification are often logged within the same second as the hop before them. Each hop sorts
/// by the latest first-seen time along the hops that lead to it, then by how many lead to it.
fn journey_order(nodes: Vec<Node>) -> Vec<Node> {
    let keys: Vec<(Timestamp, usize, i64)> = (0..nodes.len())
        .map(|start| {
            let (mut at, mut latest, mut depth) = (start, nodes[start].row.first_seen, 0);
            // Bounded: bad links can never loop forever.
            while let Some(from) = nodes[at].from.filter(|_| depth < nodes.len()) {
                at = from;
                latest = latest.max(nodes[at].row.first_seen);
                depth += 1;
            }
            (latest, depth, nodes[start].row.uid)
        })
        .collect();
    let mut keyed: Vec<((Timestamp, usize, i64), Node)> = keys.into_iter().zip(nodes).collect();
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, node)| node).collect()
}

/// Which of `uids` the caller may see.
async fn visible_uids(client: &Client, scope: &Scope, uids: &[i64]) -> ApiResult<HashSet<i64>> {
    let mut q = Query::default();
    let list = q.bind(uids.to_vec());
    q.and(format!("m.uid = ANY({list}::bigint[])"));
    let visible = scope.messages_condition(&mut q, "m");
    q.and(visible);
    let sql = format!("SELECT m.uid FROM messages m {}", q.where_clause());
    Ok(client
        .query(&sql, &q.params())
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// Delivery attempts of these messages, by (message, lower-case recipient), oldest first.
async fn attempts(client: &Client, uids: &[i64]) -> ApiResult<HashMap<(i64, String), Vec<Attempt>>> {
    let rows = client
        .query(
            "SELECT d.message_uid, lower(d.recipient), d.ts, d.status, d.relay, d.dsn, d.delay,
                    d.delay_before_qmgr, d.delay_in_qmgr, d.delay_conn_setup, d.delay_transmission, d.status_text
             FROM deliveries d WHERE d.message_uid = ANY($1)
             ORDER BY d.ts, d.line_key LIMIT $2",
            &[&uids, &MAX_ATTEMPTS],
        )
        .await?;
    let mut by_recipient: HashMap<(i64, String), Vec<Attempt>> = HashMap::new();
    for row in rows {
        by_recipient.entry((row.get(0), row.get(1))).or_default().push(Attempt {
            ts: row.get(2),
            status: row.get(3),
            relay: row.get(4),
            dsn: row.get(5),
            delay: row.get(6),
            delays: [row.get(7), row.get(8), row.get(9), row.get(10)],
            status_text: row.get(11),
        });
    }
    Ok(by_recipient)
}

/// The lines of these messages in time order (those the caller may see: the same rule as the
/// log view's), one more than [`MAX_LINES`] to tell truncation.
async fn lines(client: &Client, scope: &Scope, uids: &[i64]) -> ApiResult<Vec<LogLine>> {
    let mut q = Query::default();
    let list = q.bind(uids.to_vec());
    q.and(format!("e.message_uid = ANY({list}::bigint[])"));
    let visible = scope.log_events_condition(&mut q, "e");
    q.and(visible);
    let sql = format!(
        "SELECT {} FROM log_events e JOIN servers s ON s.id = e.server_id {}
         ORDER BY e.ts, e.line_key LIMIT {}",
        LogLine::COLUMNS,
        q.where_clause(),
        MAX_LINES + 1
    );
    Ok(client
        .query(&sql, &q.params())
        .await?
        .iter()
        .map(LogLine::from_row)
        .collect())
}

/// The NDRs linked to these messages that the caller may see (the NDR list's rule), each with
/// the failures the caller may read.
async fn ndrs(client: &Client, scope: &Scope, uids: &[i64], servers: &HashMap<i64, String>) -> ApiResult<Vec<NdrLink>> {
    let mut q = Query::default();
    let list = q.bind(uids.to_vec());
    q.and(format!("n.message_uid = ANY({list}::bigint[])"));
    let visible = scope.ndrs_condition(&mut q, "n");
    q.and(visible);
    let readable = scope.ndr_recipients_condition(&mut q, "n", "nr");
    let rows = client
        .query(
            &format!(
                "SELECT n.id, n.received_at, n.reporting_mta, n.postfix_queue_id, n.postfix_sender, n.subject,
                    n.message_uid, n.kind,
                    coalesce((SELECT json_agg(json_build_object(
                                  'address', coalesce(nr.final_recipient, nr.original_recipient),
                                  'action', nr.action, 'status', nr.status, 'diagnostic', nr.diagnostic_code)
                                  ORDER BY nr.position)
                              FROM ndr_recipients nr
                              WHERE nr.ndr_received_at = n.received_at AND nr.ndr_id = n.id AND {readable}), '[]'::json)
             FROM ndrs n {}
             ORDER BY n.received_at, n.id",
                q.where_clause()
            ),
            &q.params(),
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let uid: i64 = row.get(6);
            NdrLink {
                id: row.get::<_, i64>(0).to_string(),
                received_at: row.get(1),
                reporting_mta: row.get(2),
                queue_id: row.get(3),
                original_sender: row.get(4),
                subject: row.get(5),
                server: servers.get(&uid).cloned().unwrap_or_default(),
                message_id: uid.to_string(),
                flagged: row.get::<_, &str>(7) != "dsn",
                failed_recipients: serde_json::from_value(row.get(8)).unwrap_or_default(),
            }
        })
        .collect())
}

/// One e-mail's whole journey across servers and queue ids, each recipient's attempts, the raw
/// lines, its NDRs and greylisting. A hop the caller may not see is `{server, link_kind,
/// restricted: true}` only.
#[utoipa::path(get, path = "/messages/{id}", tag = "search", operation_id = "message_detail",
    params(("id" = String, Path, description = "A message's id (from a search)")),
    responses(
        (status = 200, body = MessageDetail),
        (status = 404, description = "No such message, or outside the caller's scope", body = ErrorBody),
    ))]
async fn get_detail(
    State(state): State<AppState>,
    caller: Caller,
    PathParam(id): PathParam<String>,
) -> ApiResult<Json<MessageDetail>> {
    // An id that is not a number names no message: 404 like any other unknown id.
    let uid: i64 = id.parse().map_err(|_| ApiError::not_found())?;
    let client = state.read_for(&caller).await?;
    Ok(Json(detail(&client, &caller.scope, uid).await?))
}

pub fn routes() -> ApiRoutes {
    ApiRoutes::new().add(routes!(get_detail))
}

#[cfg(test)]
mod order_tests {
    use super::*;

    fn node(uid: i64, server: &str, second: i64, from: Option<usize>) -> Node {
        let at = Timestamp(second * Timestamp::MICROS_PER_SECOND);
        Node {
            row: MessageRow {
                started_at: at,
                uid,
                server_id: 1,
                server: server.to_owned(),
                queue_id: format!("Q{uid}"),
                message_id: None,
                sender: None,
                size: None,
                client_ip: None,
                client_name: None,
                client_country: None,
                first_seen: at,
                last_seen: at,
                flow: None,
                state: "sent".to_owned(),
                state_reason: None,
            },
            link_kind: from.map(|_| "relay".to_owned()),
            from,
        }
    }

    #[test]
    fn a_hop_comes_after_the_one_it_came_from_even_within_the_same_second() {
        // A bounce (uid 50) at second 10, its notification (uid 40) and the notification's relay
        // to another server (uid 5) in the same second, a later unrelated sibling at second 11.
        let nodes = vec![
            node(5, "in1", 10, Some(1)),
            node(40, "out1", 10, Some(2)),
            node(50, "out1", 10, None),
            node(7, "out1", 11, Some(2)),
        ];
        let order: Vec<i64> = journey_order(nodes).iter().map(|n| n.row.uid).collect();
        assert_eq!(order, [50, 40, 5, 7]);
        // A hop logged a second earlier than the one it came from (clocks of two servers) still
        // comes after it.
        let nodes = vec![node(1, "in1", 9, Some(1)), node(2, "out1", 10, None)];
        let order: Vec<i64> = journey_order(nodes).iter().map(|n| n.row.uid).collect();
        assert_eq!(order, [2, 1]);
        // Links that loop (bad data) end the walk instead of hanging.
        let nodes = vec![node(1, "a", 1, Some(1)), node(2, "b", 1, Some(0))];
        assert_eq!(journey_order(nodes).len(), 2);
    }
}
