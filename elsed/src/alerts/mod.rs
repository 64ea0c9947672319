//! Delivery insights and alerts: ELSE tells the postmaster when something goes wrong.
//!
//! `elsed serve` evaluates every rule each `interval_secs`, off rsyslog's path, reading the
//! rollups (and each detector's own short window of recent rows, never the whole history):
//!
//! - [`detectors`]: one module per family of rules, each saying which conditions hold now;
//! - [`lifecycle`]: findings become alerts that open once, update, resolve by themselves with
//!   hysteresis, regroup when they return, and that users acknowledge or silence;
//! - [`channels`]: e-mail, signed webhooks and Alertmanager, from an outbox with retries;
//! - [`patterns`]: the table of blocklist and reputation replies;
//! - [`config`]: `[alerts]` of elsed.toml.
//!
//! The rules and their thresholds are documented in docs/alerts.md; the web API is
//! `web/api/alerts.rs`.

pub mod baseline;
#[cfg(test)]
mod bench;
pub mod channels;
pub mod config;
pub mod detectors;
pub mod lifecycle;
pub mod patterns;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_sources;

pub use config::AlertsConfig;

use omelse::parse::Timestamp;

/// The task of `elsed serve`: evaluates the rules, then sends what the channels have due, every
/// `interval_secs`.
pub async fn run(pool: crate::db::Pool, config: AlertsConfig, reports: crate::schedule::ReportsConfig) {
    if !config.enabled {
        tracing::info!("alerts: disabled ([alerts] enabled = false)");
        return;
    }
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(config.interval_secs));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let mut client = match pool.get().await {
            Ok(client) => client,
            Err(e) => {
                tracing::warn!("alerts: database unavailable: {e}");
                continue;
            }
        };
        match lifecycle::evaluate(&mut client, &config, Timestamp::now()).await {
            Ok(Some((_, changes))) if changes != lifecycle::Changes::default() => {
                tracing::info!(?changes, "alerts evaluated");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("alerts not evaluated: {e:#}"),
        }
        if let Err(e) = channels::dispatch(&**client, &config, &reports, Timestamp::now()).await {
            tracing::warn!("alert notifications: {e:#}");
        }
    }
}

/// What docs/alerts.md tells a postmaster to use is checked here.
#[cfg(test)]
mod docs {
    use std::path::Path;

    fn alerts_md() -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/alerts.md");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The fenced block of `language` after `heading`.
    fn block(text: &str, heading: &str, language: &str) -> String {
        let after = text
            .split_once(heading)
            .unwrap_or_else(|| panic!("{heading} in docs/alerts.md"))
            .1;
        let start = after.split_once(&format!("```{language}\n")).expect("the block").1;
        start.split_once("\n```").expect("the end of the block").0.to_owned()
    }

    #[test]
    fn the_prometheus_rules_parse() {
        let Some(promtool) = else_tests::require::tool("/usr/bin/promtool", "prometheus") else {
            return;
        };
        let rules = std::env::temp_dir().join(format!("else-alert-rules-{}.yml", std::process::id()));
        std::fs::write(&rules, block(&alerts_md(), "## Prometheus alert rules", "yaml")).unwrap();
        let out = std::process::Command::new(promtool)
            .args(["check", "rules"])
            .arg(&rules)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&rules);
        let said = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{said}");
        assert!(said.contains("SUCCESS: 5 rules found"), "{said}");
    }

    #[test]
    fn the_channels_example_is_a_valid_configuration() {
        let example = block(&alerts_md(), "## Channels", "toml");
        let config = crate::config::Config::parse(&example, Path::new("docs/alerts.md")).unwrap();
        assert_eq!(config.alerts.channels.webhooks.len(), 1);
        assert_eq!(config.alerts.channels.alertmanager, ["http://127.0.0.1:9093"]);
    }

    #[test]
    fn bad_alert_settings_are_refused_with_their_key() {
        let refused = [
            (
                "[alerts.destination]\nmin_increase = 1.5\n",
                "alerts.destination.min_increase",
            ),
            (
                "[alerts.channels]\nemail_to = [\"not an address\"]\n",
                "alerts.channels.email_to[0]",
            ),
            (
                "[[alerts.channels.webhooks]]\nurl = \"ftp://x\"\nsecret = \"0123456789abcdef\"\n",
                "alerts.channels.webhooks[0].url",
            ),
            (
                "[[alerts.channels.webhooks]]\nurl = \"https://x.example\"\nsecret = \"short\"\n",
                "alerts.channels.webhooks[0].secret",
            ),
            ("[alerts]\ninterval_secs = 0\n", "alerts.interval_secs"),
        ];
        for (text, key) in refused {
            let e = crate::config::Config::parse(text, Path::new("elsed.toml")).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
        }
    }
}
