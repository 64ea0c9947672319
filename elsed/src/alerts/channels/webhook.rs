//! Webhooks: the notification's JSON POSTed to the configured URL, with its HMAC-SHA256 under the
//! webhook's secret in `X-Else-Signature: sha256=<hex>` (as GitHub signs its webhooks), so the
//! receiver can tell our notifications from forgeries.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::alerts::config::WebhookConfig;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "X-Else-Signature";

/// `sha256=<hex of HMAC-SHA256(secret, body)>`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

pub async fn send(hook: &WebhookConfig, payload: &serde_json::Value, timeout: Duration) -> anyhow::Result<()> {
    let body = serde_json::to_vec(payload)?;
    let event = payload["event"].as_str().unwrap_or_default().to_owned();
    let response = super::http_client(timeout)?
        .post(&hook.url)
        .header("content-type", "application/json")
        .header(SIGNATURE_HEADER, signature(&hook.secret, &body))
        .header("X-Else-Event", event)
        .body(body)
        .send()
        .await?;
    if !response.status().is_success() {
        anyhow::bail!("{} answered {}", hook.url, response.status());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_signature_is_rfc_4231s_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            super::signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
