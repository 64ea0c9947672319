//! Bounce or reject spikes, from `traffic_hourly`, over the last `window_hours` (the current hour
//! included) against the same hours of each of the previous `baseline_days` (median + `mad_factor`
//! robust deviations, at least `min_increase` above the median), with `min_messages` in the window:
//!
//! - `bounce_rate`: a group domain's share of bounced among delivered and bounced recipients
//!   (mail to and from it, every server);
//! - `reject_rate`: a server's share of rejected among received and rejected messages.

use omelse::parse::Timestamp;
use serde_json::json;
use tokio_postgres::GenericClient;

use super::{search_link, Finding, Severity};
use crate::alerts::baseline::Baseline;
use crate::alerts::config::RateRule;

pub async fn detect(client: &impl GenericClient, rule: &RateRule, now: Timestamp) -> anyhow::Result<Vec<Finding>> {
    let mut findings = Vec::new();
    for spike in [Spike::Bounce, Spike::Reject] {
        findings.extend(spike.detect(client, rule, now).await?);
    }
    Ok(findings)
}

#[derive(Clone, Copy)]
enum Spike {
    Bounce,
    Reject,
}

impl Spike {
    /// (rule, the group key column, the rows counted, the failing metric, the metrics of the whole).
    fn sql(self) -> (&'static str, &'static str, &'static str, &'static str, &'static str) {
        match self {
            Spike::Bounce => (
                "bounce_rate",
                "t.domain",
                "t.by_domain",
                "bounced",
                "'delivered', 'bounced'",
            ),
            Spike::Reject => (
                "reject_rate",
                "t.server_id::text",
                "NOT t.by_domain",
                "rejected",
                "'received', 'rejected'",
            ),
        }
    }

    async fn detect(
        self,
        client: &impl GenericClient,
        rule: &RateRule,
        now: Timestamp,
    ) -> anyhow::Result<Vec<Finding>> {
        let (name, key, rows_counted, failing, whole) = self.sql();
        // Day 0 is the window itself; days 1… its baseline.
        let rows = client
            .query(
                &format!(
                    "WITH days AS (
                         SELECT d, date_trunc('hour', $1::timestamptz) - make_interval(days => d, hours => $2::int - 1) AS start
                         FROM generate_series(0, $3::int) d
                     ), sums AS (
                         SELECT {key} AS key, days.d,
                                sum(t.messages) FILTER (WHERE t.metric = '{failing}')::float8 AS failing,
                                sum(t.messages)::float8 AS whole
                         FROM days JOIN traffic_hourly t
                              ON t.hour >= days.start AND t.hour < days.start + make_interval(hours => $2::int)
                         WHERE {rows_counted} AND t.metric IN ({whole}) AND t.domain IS NOT NULL
                         GROUP BY 1, 2
                     )
                     SELECT key, coalesce(max(failing) FILTER (WHERE d = 0), 0), max(whole) FILTER (WHERE d = 0),
                            coalesce(array_agg(coalesce(failing, 0) / whole) FILTER (WHERE d > 0 AND whole > 0), '{{}}')
                     FROM sums GROUP BY key
                     HAVING max(whole) FILTER (WHERE d = 0) >= $4"
                ),
                &[&now, &(rule.window_hours as i32), &(rule.baseline_days as i32), &(rule.min_messages as f64)],
            )
            .await?;
        let names = if rows.is_empty() {
            Default::default()
        } else {
            super::server_names(client).await?
        };
        let mut findings = Vec::new();
        for row in rows {
            let key: String = row.get(0);
            let failing: f64 = row.get(1);
            let whole: f64 = row.get(2);
            let history: Vec<f64> = row.get(3);
            let share = failing / whole;
            let baseline = Baseline::of(&history);
            let threshold = baseline.upper_threshold(rule.mad_factor, rule.min_increase);
            if share < threshold {
                continue;
            }
            let evidence = json!({
                "failing": failing, "total": whole, "share": share, "window_hours": rule.window_hours,
                "baseline": {"median": baseline.median, "mad": baseline.mad, "days": baseline.samples},
                "threshold": threshold,
            });
            let finding = match self {
                Spike::Bounce => Finding {
                    rule: name,
                    key: key.clone(),
                    server_id: None,
                    domain: Some(key.clone()),
                    severity: Severity::Warning,
                    title: format!(
                        "Bounces of {key} jump: {failing:.0} of {whole:.0} ({:.0}%, usually {:.0}%)",
                        share * 100.0,
                        baseline.median * 100.0
                    ),
                    evidence: with(
                        evidence,
                        "messages",
                        search_link(&[("recipient", &format!("@{key}")), ("status", "bounced")]),
                    ),
                },
                Spike::Reject => {
                    let server_id: i32 = key.parse()?;
                    let server = names.get(&server_id).cloned().unwrap_or_else(|| key.clone());
                    Finding {
                        rule: name,
                        key: server.clone(),
                        server_id: Some(server_id),
                        domain: None,
                        severity: Severity::Warning,
                        title: format!(
                            "{server} rejects {failing:.0} of {whole:.0} messages ({:.0}%, usually {:.0}%)",
                            share * 100.0,
                            baseline.median * 100.0
                        ),
                        evidence: with(evidence, "rejects", format!("/rejects?server={server_id}")),
                    }
                }
            };
            findings.push(finding);
        }
        Ok(findings)
    }
}

fn with(mut evidence: serde_json::Value, key: &str, link: String) -> serde_json::Value {
    evidence[key] = serde_json::Value::String(link);
    evidence
}
