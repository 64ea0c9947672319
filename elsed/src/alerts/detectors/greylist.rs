//! Greylisting harms: among the triplets of one sender domain first greylisted in the last
//! `window_hours` (and at least `retry_grace_minutes` ago, time enough to retry), the share that
//! never retried rises `min_increase` above that domain's share over the previous
//! `baseline_days`, with `min_triplets` on each side: a legitimate sender that used to retry is
//! losing its mail. Greylisting is shared by every MX, so the alert is about the sender domain
//! and no server; it is for administrators (the sender is what a client claimed, and the counts
//! are every recipient's).

use omelse::parse::Timestamp;
use serde_json::json;
use tokio_postgres::GenericClient;

use super::{minutes_before, Finding, Severity};
use crate::alerts::config::GreylistRule;

pub async fn detect(client: &impl GenericClient, rule: &GreylistRule, now: Timestamp) -> anyhow::Result<Vec<Finding>> {
    let window_start = minutes_before(now, rule.window_hours * 60);
    let window_end = minutes_before(now, rule.retry_grace_minutes);
    let baseline_start = minutes_before(window_start, rule.baseline_days * 24 * 60);
    let rows = client
        .query(
            // One pass over the triplets of the baseline and the window (the sender's domain
            // computed once per row): a domain is judged when both sides have enough.
            "SELECT else_domain(sender) AS domain,
                    count(*) FILTER (WHERE first_seen >= $1),
                    count(*) FILTER (WHERE first_seen >= $1 AND passed_at IS NULL),
                    count(*) FILTER (WHERE first_seen < $1),
                    count(*) FILTER (WHERE first_seen < $1 AND passed_at IS NULL)
             FROM greylist_triplets
             WHERE first_seen >= $3 AND first_seen < $2
             GROUP BY 1
             HAVING count(*) FILTER (WHERE first_seen >= $1 AND passed_at IS NULL) >= $4
                AND count(*) FILTER (WHERE first_seen < $1) >= $4",
            &[&window_start, &window_end, &baseline_start, &rule.min_triplets],
        )
        .await?;
    let mut findings = Vec::new();
    for row in rows {
        let domain: String = row.get(0);
        let (recent, lost, before, lost_before): (i64, i64, i64, i64) =
            (row.get(1), row.get(2), row.get(3), row.get(4));
        let share = lost as f64 / recent as f64;
        let usual = lost_before as f64 / before as f64;
        if recent < rule.min_triplets || share < usual + rule.min_increase {
            continue;
        }
        findings.push(Finding {
            rule: "greylist",
            key: domain.clone(),
            server_id: None,
            // The sender domain is what a client claimed: it grants no group the alert.
            domain: None,
            severity: Severity::Warning,
            title: format!(
                "Senders of {domain} stopped retrying after greylisting: {lost} of {recent} never came back ({:.0}%, usually {:.0}%)",
                share * 100.0,
                usual * 100.0
            ),
            evidence: json!({
                "sender_domain": domain, "greylisted": recent, "never_retried": lost, "share": share,
                "usual_share": usual, "baseline_triplets": before, "window_hours": rule.window_hours,
                "greylist": format!("/greylist?sender=@{domain}"),
            }),
        });
    }
    Ok(findings)
}
