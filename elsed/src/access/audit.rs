//! The audit log: every active operation (accounts, groups, servers, queue actions, whitelists),
//! who asked for it, on what, and how it ended. Written by every part (the web application, the
//! command line, `elsed setup`, the SNMP queue actions), read by administrators
//! (`GET /admin/audit`).

use tokio_postgres::GenericClient;

/// Records one operation. `actor` is a login (or `cli:<unix user>`), `action` a dotted name
/// (`user.create`, `queue.flush`), `target` what it acted on, `details` its parameters (never a
/// secret), `result` `ok` or what went wrong. Returns the entry's id.
pub async fn record(
    client: &impl GenericClient,
    actor: &str,
    action: &str,
    target: Option<&str>,
    details: serde_json::Value,
    result: &str,
) -> Result<i64, tokio_postgres::Error> {
    let row = client
        .query_one(
            "INSERT INTO audit_log (actor, action, target, details, result) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&actor, &action, &target, &details, &result],
        )
        .await?;
    Ok(row.get(0))
}
