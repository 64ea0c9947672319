//! TEMPORARY, until the auth branch is merged (the lead replaces this file with its `audit`
//! module): the signature the greylist whitelist handlers call, logging only.

use tokio_postgres::Client;

use super::caller::Caller;
use super::error::ApiResult;

/// Records an administrator's action (the real one writes the audit table).
pub async fn record(
    _client: &Client,
    actor: &Caller,
    action: &str,
    target: &str,
    details: serde_json::Value,
    result: &str,
) -> ApiResult<()> {
    tracing::info!(actor = %actor.login, action, target, %details, result, "audit (stub)");
    Ok(())
}
