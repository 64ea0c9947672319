//! Prometheus Alertmanager: `POST <url>/api/v2/alerts` with one alert whose labels identify the
//! condition (`alertname` = `else_<rule>`, `key`, `server`, `domain`, `severity`); an opening has
//! no end, a resolution ends at its time, which is how Alertmanager learns it resolved.

use std::time::Duration;

use serde_json::json;

/// The body Alertmanager's API takes for one notification's alert.
pub fn body(payload: &serde_json::Value) -> serde_json::Value {
    let alert = &payload["alert"];
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let mut labels = json!({
        "alertname": format!("else_{}", text(&alert["rule"])),
        "key": text(&alert["key"]),
        "severity": text(&alert["severity"]),
        "alert_id": alert["id"].to_string(),
    });
    for optional in ["server", "domain"] {
        if let Some(value) = alert[optional].as_str() {
            labels[optional] = json!(value);
        }
    }
    let mut am = json!({
        "labels": labels,
        "annotations": {"summary": text(&alert["title"]), "url": text(&alert["url"])},
        "startsAt": alert["opened_at"],
        "generatorURL": text(&alert["url"]),
    });
    if payload["event"] == "resolve" {
        am["endsAt"] = alert["resolved_at"].clone();
    }
    json!([am])
}

pub async fn send(url: &str, payload: &serde_json::Value, timeout: Duration) -> anyhow::Result<()> {
    let endpoint = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
    let response = super::http_client(timeout)?
        .post(&endpoint)
        .json(&body(payload))
        .send()
        .await?;
    if !response.status().is_success() {
        anyhow::bail!("{endpoint} answered {}", response.status());
    }
    Ok(())
}
