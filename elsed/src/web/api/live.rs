//! `GET /live?after=CURSOR`: the newest log lines for someone watching the flow (the page polls
//! every 2 s), within the caller's scope. The cursor is the position of the last line sent
//! (`<microseconds>_<line key>`, the order of the `(ts, line_key)` index). Lines that arrive with
//! an older time than the cursor (a server's late delivery of its log) are not shown live; the
//! log view has them.

use axum::extract::State;
use axum::Json;
use omelse::parse::Timestamp;
use serde::Serialize;
use tokio_postgres::Client;
use utoipa_axum::routes;

use super::logs::LogLine;
use super::params::Params;
use crate::access::{Caller, Scope};
use crate::sql::Query;
use crate::web::error::{ApiError, ApiResult, ErrorBody};
use crate::web::extract::QueryParams;
use crate::web::openapi::ApiRoutes;
use crate::web::AppState;

/// Lines of the first call (without a cursor).
pub const FIRST: i64 = 100;
/// Lines of one answer at most; further behind than that, the watcher jumps to the newest.
pub const MAX: i64 = 500;

/// A position in the stream of lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub ts: Timestamp,
    pub line_key: i64,
}

impl Cursor {
    /// Before every line.
    const START: Cursor = Cursor {
        ts: Timestamp(i64::MIN / 2),
        line_key: i64::MIN,
    };

    pub fn parse(text: &str) -> Option<Cursor> {
        let (ts, key) = text.split_once('_')?;
        Some(Cursor {
            ts: Timestamp(ts.parse().ok()?),
            line_key: key.parse().ok()?,
        })
    }

    fn of(line: &LogLine) -> Cursor {
        Cursor {
            ts: line.ts,
            line_key: line.line_key,
        }
    }
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}_{}", self.ts.0, self.line_key)
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LiveAnswer {
    /// What to send as `after` next time.
    pub cursor: String,
    pub events: Vec<LogLine>,
    /// More than [`MAX`] lines came since the cursor: only the newest are here.
    pub skipped: bool,
}

/// The lines after `after` (or the last [`FIRST`]) within `scope`, oldest first.
pub async fn live(client: &Client, scope: &Scope, after: Option<Cursor>) -> ApiResult<LiveAnswer> {
    let mut q = Query::default();
    let visible = scope.log_events_condition(&mut q, "e");
    q.and(visible);
    let mut skipped = false;
    let mut events = match after {
        None => newest(client, &q, FIRST).await?,
        Some(cursor) => {
            let ts = q.bind(cursor.ts);
            let key = q.bind(cursor.line_key);
            q.and(format!("e.ts >= {ts} AND (e.ts, e.line_key) > ({ts}, {key})"));
            let sql = format!(
                "SELECT {} FROM log_events e JOIN servers s ON s.id = e.server_id {}
                 ORDER BY e.ts, e.line_key LIMIT {}",
                LogLine::COLUMNS,
                q.where_clause(),
                MAX + 1
            );
            let mut lines: Vec<LogLine> = client
                .query(&sql, &q.params())
                .await?
                .iter()
                .map(LogLine::from_row)
                .collect();
            if lines.len() as i64 > MAX {
                skipped = true;
                lines = newest(client, &q, MAX).await?;
            }
            lines
        }
    };
    events.sort_by_key(|l| (l.ts, l.line_key));
    let cursor = events.last().map(Cursor::of).or(after).unwrap_or(Cursor::START);
    Ok(LiveAnswer {
        cursor: cursor.to_string(),
        events,
        skipped,
    })
}

/// The last `n` lines matching `q`.
async fn newest(client: &Client, q: &Query, n: i64) -> ApiResult<Vec<LogLine>> {
    let sql = format!(
        "SELECT {} FROM log_events e JOIN servers s ON s.id = e.server_id {}
         ORDER BY e.ts DESC, e.line_key DESC LIMIT {n}",
        LogLine::COLUMNS,
        q.where_clause()
    );
    Ok(client
        .query(&sql, &q.params())
        .await?
        .iter()
        .map(LogLine::from_row)
        .collect())
}

/// `after`, the cursor of the previous answer.
pub fn read_after(p: &mut Params) -> ApiResult<Option<Cursor>> {
    p.text("after")?
        .map(|text| {
            Cursor::parse(&text)
                .ok_or_else(|| ApiError::bad_param("after", "after must be the cursor of the previous answer"))
        })
        .transpose()
}

/// The newest log lines after the cursor, oldest first (the last 100 without one; more than 500
/// since the cursor: the newest 500 and `skipped`). The live page polls it every 2 s.
#[utoipa::path(get, path = "/live", tag = "search", operation_id = "live_lines",
    params(("after" = Option<String>, Query, description = "The `cursor` of the previous answer")),
    responses(
        (status = 200, body = LiveAnswer),
        (status = 400, description = "Not a cursor, or an unknown parameter", body = ErrorBody),
    ))]
async fn get_live(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(pairs): QueryParams<Vec<(String, String)>>,
) -> ApiResult<Json<LiveAnswer>> {
    let mut p = Params::new(pairs);
    let after = read_after(&mut p)?;
    p.finish()?;
    let client = state.db.get().await?;
    Ok(Json(live(&client, &caller.scope, after).await?))
}

pub fn routes() -> ApiRoutes {
    ApiRoutes::new().add(routes!(get_live))
}
