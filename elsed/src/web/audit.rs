//! The audit log as the API writes and shows it: an administrator's change recorded with its
//! outcome, and the log read back a page at a time (`GET /admin/audit`). The entries are written
//! by [`crate::access::audit::record`].

use omelse::parse::Timestamp;
use serde::Serialize;
use tokio_postgres::GenericClient;

use crate::access::audit::record;
use crate::sql::Query;

use super::error::{ApiError, ApiResult};
use super::paging::{Page, Window};

/// An entry of the audit log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<Timestamp>,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    #[schema(value_type = Option<HashMap<String, serde_json::Value>>)]
    pub details: Option<serde_json::Value>,
    pub result: Option<String>,
}

/// Records how an administrator's change ended (`ok`, or `refused: why`: refused attempts are
/// in the log too), then answers with its outcome.
pub async fn audited<T, E>(
    client: &impl GenericClient,
    actor: &str,
    action: &str,
    target: &str,
    details: serde_json::Value,
    outcome: Result<T, E>,
) -> ApiResult<T>
where
    E: std::fmt::Display + Into<ApiError>,
{
    let result = match &outcome {
        Ok(_) => "ok".to_owned(),
        Err(e) => format!("refused: {e}"),
    };
    record(client, actor, action, Some(target), details, &result).await?;
    outcome.map_err(Into::into)
}

/// What an audited change was about: its outcome's name, else `kind id` (it was refused).
pub fn target<T, E>(
    outcome: &Result<T, E>,
    name: impl FnOnce(&T) -> String,
    kind: &str,
    id: impl std::fmt::Display,
) -> String {
    outcome.as_ref().map_or_else(|_| format!("{kind} {id}"), name)
}

/// Newest first, optionally one actor's or one action's.
pub async fn list(
    client: &impl GenericClient,
    actor: Option<&str>,
    action: Option<&str>,
    window: Window,
) -> Result<Page<AuditEntry>, tokio_postgres::Error> {
    let mut q = Query::default();
    if let Some(actor) = actor {
        let p = q.bind(actor.to_owned());
        q.and(format!("actor = {p}"));
    }
    if let Some(action) = action {
        let p = q.bind(action.to_owned());
        q.and(format!("action = {p}"));
    }
    let filter = q.where_clause();
    let total: i64 = client
        .query_one(&format!("SELECT count(*) FROM audit_log {filter}"), &q.params())
        .await?
        .get(0);
    let limit = q.bind(window.limit());
    let offset = q.bind(window.offset());
    let rows = client
        .query(
            &format!(
                "SELECT id, at, actor, action, target, details, result FROM audit_log {filter}
                 ORDER BY id DESC LIMIT {limit} OFFSET {offset}"
            ),
            &q.params(),
        )
        .await?;
    let items = rows
        .iter()
        .map(|row| AuditEntry {
            id: row.get(0),
            at: row.get(1),
            actor: row.get(2),
            action: row.get(3),
            target: row.get(4),
            details: row.get(5),
            result: row.get(6),
        })
        .collect();
    Ok(window.page((total, false), items))
}
