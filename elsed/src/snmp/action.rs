//! Queue actions: a SET of the action's object by the server's control user, then a GET of the
//! agent's own account of it (`lastActionText`), everything recorded in `audit_log`.

use serde_json::json;
use tokio_postgres::Client;

use super::engine::Role;
use super::mib;
use super::session::{error_status_name, SetValue, SnmpError};
use super::{store, Action, ActionOutcome, SnmpHandle};

/// Runs a queue action on a server through its control user and records it in `audit_log`
/// (who, when, what, result, the agent's answer), whatever the result.
pub async fn act(
    db: &Client,
    handle: &SnmpHandle,
    actor: &str,
    server_id: i32,
    action: Action,
) -> anyhow::Result<ActionOutcome> {
    let (server, target) = store::control_target(db, handle, server_id).await?;
    let name = format!("snmp.{}", action.kind.name());
    let mut details = json!({"server_id": server_id, "queue_id": action.queue_id});
    let record = |result: &str, snmp_status: String, agent_text: Option<String>, mut details: serde_json::Value| {
        details["snmp_status"] = json!(snmp_status);
        details["agent_text"] = json!(agent_text);
        let result = result.to_owned();
        let (name, server) = (name.clone(), server.clone());
        async move {
            let audit_id =
                crate::access::audit::record(db, actor, &name, Some(&server), details.clone(), &result).await?;
            Ok(ActionOutcome {
                audit_id,
                result,
                snmp_status,
                agent_text,
            })
        }
    };
    // Checked here too (an Action can be deserialised from a web request without `Action::new`).
    if let Err(e) = Action::new(action.kind.name(), action.queue_id.as_deref()) {
        return record("refused", format!("not sent: {e}"), None, details).await;
    }
    let target = match target {
        Ok(target) => target,
        Err(e) => return record("refused", format!("not sent: {e:#}"), None, details).await,
    };
    let value = match (&action.queue_id, action.kind) {
        (Some(id), _) => SetValue::Text(id.clone()),
        (None, _) => SetValue::Integer(1),
    };
    let verdict = vec![mib::control_oid(mib::LAST_STATUS), mib::control_oid(mib::LAST_TEXT)];
    let (set, after) = handle
        .engine
        .set((server_id, Role::Control), target, action.kind.oid(), value, verdict)
        .await;
    let agent_text = after
        .and_then(Result::ok)
        .and_then(|r| r.get(&mib::control_oid(mib::LAST_TEXT)).and_then(|v| v.as_text()));
    match set {
        Ok(response) => {
            let status = error_status_name(response.error_status).to_owned();
            details["error_index"] = json!(response.error_index);
            let result = match response.error_status {
                0 => "done",
                // commitFailed: the agent ran the command and it failed.
                14 => "failed",
                _ => "refused",
            };
            // After a refusal, lastActionText is about an earlier action: not this one's answer.
            let text = if result == "refused" { None } else { agent_text };
            record(result, status, text, details).await
        }
        Err(SnmpError::Timeout(peer)) => record("unreachable", format!("no answer from {peer}"), None, details).await,
        Err(SnmpError::Failed(e)) if e.contains("Timeout") => record("unreachable", e, None, details).await,
        Err(SnmpError::Failed(e)) => record("refused", e, None, details).await,
    }
}
