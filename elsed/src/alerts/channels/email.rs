//! E-mail: a plain-text message per opening and resolution to `email_to`, through the relay of
//! `[reports]` (the scheduled reports' transport).

use lettre::message::header::ContentType;
use lettre::Message;

use crate::schedule::ReportsConfig;

/// Subject and body of a notification.
pub fn render(payload: &serde_json::Value) -> (String, String) {
    let alert = &payload["alert"];
    let title = alert["title"].as_str().unwrap_or_default();
    let state = if payload["event"] == "resolve" {
        "RESOLVED"
    } else {
        "OPEN"
    };
    let subject = format!("[ELSE {state}] {title}");
    let evidence = serde_json::to_string_pretty(&alert["evidence"]).unwrap_or_default();
    let mut body = format!(
        "{title}\n\nRule: {}\nSeverity: {}\nOpened: {}\n",
        alert["rule"].as_str().unwrap_or_default(),
        alert["severity"].as_str().unwrap_or_default(),
        alert["opened_at"].as_str().unwrap_or_default(),
    );
    if let Some(resolved) = alert["resolved_at"].as_str() {
        body.push_str(&format!("Resolved: {resolved}\n"));
    }
    body.push_str(&format!(
        "\n{}\n\nEvidence:\n{evidence}\n",
        alert["url"].as_str().unwrap_or_default()
    ));
    (subject, body)
}

pub async fn send(reports: &ReportsConfig, to: &[String], payload: &serde_json::Value) -> anyhow::Result<()> {
    let (subject, body) = render(payload);
    let mut message = Message::builder().from(reports.sender_mailbox()?).subject(subject);
    for recipient in to {
        message = message.to(recipient
            .parse()
            .map_err(|e| anyhow::anyhow!("alerts.channels.email_to {recipient}: {e}"))?);
    }
    reports.send(message.header(ContentType::TEXT_PLAIN).body(body)?).await
}
