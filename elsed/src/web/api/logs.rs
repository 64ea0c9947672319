//! `GET /logs`: the raw lines (the original's "Logs" tab) by time, server, program and a substring
//! (`q`, served by the trigram indexes `elsed maintain` builds on finished days), each linking to
//! its message. Group members
//! see their servers' lines, end users only the lines of their messages
//! ([`Scope::log_events_condition`]).

use axum::extract::State;
use axum::response::Response;
use omelse::parse::Timestamp;
use serde::Serialize;
use tokio_postgres::Row;
use utoipa_axum::routes;

use super::history::Kind;
use super::listing::{self, Listing};
use super::params::{sql_time, ListParams, Paging, Params};
use crate::access::{Caller, Scope};
use crate::sql::{contains_pattern, like_escape, Query};
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::QueryParams;
use crate::web::openapi::ApiRoutes;
use crate::web::paging::{page_of, Page, Readers};
use crate::web::AppState;

/// A substring shorter than this has no trigram to look up: it would read every line.
pub const MIN_Q_CHARS: usize = 3;
/// Raw lines are counted for this long at most: a group member's lines of a big shared server
/// are checked one by one against the scope, and the newest page matters more than how many
/// there are (docs/benchmarks.md, "Raw lines as a group member").
const LINES_COUNT_TIME_BOX: std::time::Duration = std::time::Duration::from_millis(250);

/// One log line.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LogLine {
    #[schema(value_type = String, format = DateTime)]
    pub ts: Timestamp,
    /// With `ts`, the line's key: what a live cursor points at.
    #[serde(skip)]
    pub line_key: i64,
    pub server: String,
    pub program: String,
    pub pid: Option<i32>,
    pub queue_id: Option<String>,
    /// The message part of the line.
    pub raw: String,
    /// The id of the line's message, when it belongs to one.
    pub message_id: Option<String>,
}

impl LogLine {
    /// The columns [`LogLine::from_row`] reads, from `log_events e JOIN servers s`.
    pub const COLUMNS: &'static str = "e.ts, e.line_key, s.name, e.program, e.pid, e.queue_id, e.raw, e.message_uid";

    pub fn from_row(row: &Row) -> LogLine {
        LogLine {
            ts: row.get(0),
            line_key: row.get(1),
            server: row.get(2),
            program: row.get(3),
            pid: row.get(4),
            queue_id: row.get(5),
            raw: row.get(6),
            message_id: row.get::<_, Option<i64>>(7).map(|uid| uid.to_string()),
        }
    }
}

/// What `/logs` asks for.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub server: Option<i32>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// A substring of the line, in any case.
    pub q: Option<String>,
    /// `postfix/smtpd`, or its last part (`smtpd`) for every instance of it.
    pub program: Option<String>,
}

/// `FROM … WHERE …` of the lines `filter` finds within `scope`.
fn from_where(scope: &Scope, filter: &LogFilter) -> (String, Query) {
    let mut q = Query::default();
    q.and_bound("e.server_id = {}", filter.server);
    q.and_bound("e.ts >= {}", filter.since);
    q.and_bound("e.ts < {}", filter.until);
    q.and_bound("e.raw ILIKE {}", filter.q.as_deref().map(contains_pattern));
    if let Some(program) = &filter.program {
        let exact = q.bind(program.clone());
        let suffix = q.bind(format!("%/{}", like_escape(program)));
        q.and(format!("(e.program = {exact} OR e.program LIKE {suffix})"));
    }
    let visible = scope.log_events_condition(&mut q, "e");
    q.and(visible);
    (
        format!(
            "FROM log_events e JOIN servers s ON s.id = e.server_id {}",
            q.where_clause()
        ),
        q,
    )
}

/// `/logs` as a list: see [`listing`].
pub struct LogList;

impl Listing for LogList {
    type Filter = LogFilter;
    type Item = LogLine;
    const SORTS: &'static [(&'static str, &'static str)] = &[("ts", "e.ts")];
    const DEFAULT_SORT: &'static str = "-ts";
    const TIE: &'static str = "e.line_key";
    const CSV_HEADER: &'static [&'static str] = &["ts", "server", "program", "pid", "queue_id", "raw", "message_id"];
    const CSV_FILE: &'static str = "logs.csv";

    fn read_filter(p: &mut Params) -> ApiResult<LogFilter> {
        let filter = LogFilter {
            server: p.number("server", 1..=i32::MAX)?,
            since: p.time("since")?,
            until: p.time("until")?,
            q: p.text("q")?,
            program: p.text("program")?,
        };
        if filter.q.as_ref().is_some_and(|q| q.chars().count() < MIN_Q_CHARS) {
            return Err(ApiError::bad_param(
                "q",
                format!("q needs at least {MIN_Q_CHARS} characters"),
            ));
        }
        Ok(filter)
    }

    fn kind(_: &LogFilter) -> Kind {
        Kind::Logs
    }

    async fn page(
        readers: Readers<'_>,
        scope: &Scope,
        filter: &LogFilter,
        paging: &Paging,
    ) -> ApiResult<Page<LogLine>> {
        let (from_where, q) = from_where(scope, filter);
        let order_by = paging.order_by(Self::TIE);
        page_of(
            readers,
            LogLine::COLUMNS,
            &from_where,
            q,
            paging.window.counting_within(LINES_COUNT_TIME_BOX),
            &order_by,
            LogLine::from_row,
        )
        .await
    }

    fn csv_select(scope: &Scope, filter: &LogFilter, order_by: &str) -> ApiResult<(String, Query)> {
        let (from_where, q) = from_where(scope, filter);
        let select = format!(
            "SELECT {}, s.name, e.program, e.pid::text, e.queue_id, e.raw, e.message_uid::text {from_where} {order_by}",
            sql_time("e.ts"),
        );
        Ok((select, q))
    }
}

/// The raw lines (the "Logs" tab), by time, server, program and substring; sort `ts` (default
/// `-ts`); or all of them as CSV.
#[utoipa::path(get, path = "/logs", tag = "search", operation_id = "log_lines",
    params(
        ("server" = Option<i32>, Query, description = "A server id"),
        ("since" = Option<String>, Query, format = DateTime), ("until" = Option<String>, Query, format = DateTime),
        ("q" = Option<String>, Query, description = "A substring of the line, any case, at least 3 characters"),
        ("program" = Option<String>, Query, description = "`postfix/smtpd`, or `smtpd` for every smtpd instance"),
        ListParams,
    ),
    responses(
        (status = 200, description = "A page of lines (or, with `format=csv`, every matching row as CSV)",
            content((Page<LogLine> = "application/json"), (String = "text/csv"))),
        (status = 400, description = "A bad or unknown parameter (named in `field`)", body = ErrorBody),
    ))]
async fn get_logs(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(pairs): QueryParams<Vec<(String, String)>>,
) -> ApiResult<Response> {
    listing::answer::<LogList>(&state, &caller, pairs).await
}

pub fn routes() -> ApiRoutes {
    ApiRoutes::new().add(routes!(get_logs))
}
