//! `[alerts]` of elsed.toml: how often the rules run, each detector's thresholds, and the channels
//! alerts go out through. Every key has a default, so an empty `[alerts]` (or none) runs every
//! detector with the thresholds documented in docs/alerts.md.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// `false` stops the evaluation (and the channels) in `elsed serve`.
    pub enabled: bool,
    /// Seconds between two evaluations of every rule.
    pub interval_secs: u64,
    /// Hysteresis: an alert resolves once its condition has not been found for this long.
    pub clear_minutes: i64,
    /// A condition that returns within this long of its alert's resolution reopens that alert
    /// (one alert, `occurrences` + 1) instead of opening another.
    pub regroup_minutes: i64,
    /// The web application's address as users reach it (`https://else.example.org`), for the links
    /// of notifications; empty: links relative to the application.
    pub link_base: String,
    pub destination: DestinationRule,
    pub blocklist: BlocklistRule,
    pub flow: FlowRule,
    pub queues: QueueRule,
    pub rates: RateRule,
    pub greylist: GreylistRule,
    pub channels: ChannelsConfig,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            interval_secs: 60,
            clear_minutes: 10,
            regroup_minutes: 60,
            link_base: String::new(),
            destination: DestinationRule::default(),
            blocklist: BlocklistRule::default(),
            flow: FlowRule::default(),
            queues: QueueRule::default(),
            rates: RateRule::default(),
            greylist: GreylistRule::default(),
            channels: ChannelsConfig::default(),
        }
    }
}

/// A remote destination stops accepting: its failure share (deferrals and bounces per delivery
/// attempt) in the window is well above its own baseline.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DestinationRule {
    pub window_minutes: i64,
    /// Days whose same hours (±1) make the baseline.
    pub baseline_days: i64,
    /// Attempts and failures the window needs before the share means anything.
    pub min_attempts: i64,
    pub min_failures: i64,
    /// The threshold is the baseline's median plus this many robust deviations (1.4826 × MAD)…
    pub mad_factor: f64,
    /// …and at least the median plus this share (0 to 1).
    pub min_increase: f64,
}

impl Default for DestinationRule {
    fn default() -> Self {
        DestinationRule {
            window_minutes: 30,
            baseline_days: 7,
            min_attempts: 10,
            min_failures: 5,
            mad_factor: 3.0,
            min_increase: 0.3,
        }
    }
}

/// Our servers blocklisted or rate-limited: remote replies that match the pattern table.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlocklistRule {
    pub window_minutes: i64,
    /// Matching replies in the window before an alert opens.
    pub min_replies: i64,
}

impl Default for BlocklistRule {
    fn default() -> Self {
        BlocklistRule {
            window_minutes: 60,
            min_replies: 1,
        }
    }
}

/// Mail stops flowing: volume far below its usual level, a silent log stream, ingest lag.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlowRule {
    /// The volume of the last hour below this share of the usual one (same hour of the week)…
    pub volume_drop_share: f64,
    /// …when the usual one is at least this many messages an hour.
    pub volume_min_usual: f64,
    /// Weeks whose same hour makes the usual level.
    pub volume_weeks: i64,
    /// A server that logged within the last day and not for this long is silent.
    pub silent_minutes: i64,
    /// Lines arriving this far behind the clock are lagging.
    pub lag_minutes: i64,
}

impl Default for FlowRule {
    fn default() -> Self {
        FlowRule {
            volume_drop_share: 0.2,
            volume_min_usual: 30.0,
            volume_weeks: 4,
            silent_minutes: 15,
            lag_minutes: 10,
        }
    }
}

/// Queues grow (SNMP samples).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueRule {
    pub deferred_max: i64,
    pub active_max: i64,
    /// An agent whose last answer is older than this (or that answered unreachable) is down.
    pub agent_silent_minutes: i64,
}

impl Default for QueueRule {
    fn default() -> Self {
        QueueRule {
            deferred_max: 500,
            active_max: 200,
            agent_silent_minutes: 10,
        }
    }
}

/// Bounce or reject spikes, over the last hours of the rollups against the same hours of the
/// previous days.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateRule {
    pub window_hours: i64,
    pub baseline_days: i64,
    /// Messages the window needs.
    pub min_messages: i64,
    pub mad_factor: f64,
    pub min_increase: f64,
}

impl Default for RateRule {
    fn default() -> Self {
        RateRule {
            window_hours: 2,
            baseline_days: 7,
            min_messages: 30,
            mad_factor: 3.0,
            min_increase: 0.2,
        }
    }
}

/// Greylisting harms: a sender domain whose greylisted triplets used to retry stops retrying.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GreylistRule {
    /// Triplets first greylisted in this window (and older than `retry_grace_minutes`) are judged.
    pub window_hours: i64,
    pub retry_grace_minutes: i64,
    pub baseline_days: i64,
    pub min_triplets: i64,
    /// The share that never retried rises above the baseline's by this much.
    pub min_increase: f64,
}

impl Default for GreylistRule {
    fn default() -> Self {
        GreylistRule {
            window_hours: 24,
            retry_grace_minutes: 60,
            baseline_days: 14,
            min_triplets: 5,
            min_increase: 0.5,
        }
    }
}

/// Where alerts go.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelsConfig {
    /// Addresses mailed on each open and resolve, through the relay of `[reports]`.
    pub email_to: Vec<String>,
    pub webhooks: Vec<WebhookConfig>,
    /// Alertmanager base URLs (`http://alertmanager:9093`); alerts go to `/api/v2/alerts`.
    pub alertmanager: Vec<String>,
    /// Attempts per notification before it is given up.
    pub max_attempts: i32,
    /// First retry after this many seconds, doubling each time (at most an hour).
    pub backoff_secs: i64,
    /// Seconds a webhook or Alertmanager may take to answer.
    pub timeout_secs: u64,
}

impl Default for ChannelsConfig {
    fn default() -> Self {
        ChannelsConfig {
            email_to: Vec::new(),
            webhooks: Vec::new(),
            alertmanager: Vec::new(),
            max_attempts: 8,
            backoff_secs: 30,
            timeout_secs: 10,
        }
    }
}

/// A receiver of JSON notifications, signed with HMAC-SHA256 of the body under `secret`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    pub secret: String,
}

impl AlertsConfig {
    /// The checks types alone do not make: `(key, problem)`.
    pub fn check(&self) -> Result<(), (String, String)> {
        let positive = [
            ("alerts.interval_secs", self.interval_secs as i64),
            ("alerts.clear_minutes", self.clear_minutes),
            ("alerts.destination.window_minutes", self.destination.window_minutes),
            ("alerts.destination.baseline_days", self.destination.baseline_days),
            ("alerts.destination.min_attempts", self.destination.min_attempts),
            ("alerts.blocklist.window_minutes", self.blocklist.window_minutes),
            ("alerts.blocklist.min_replies", self.blocklist.min_replies),
            ("alerts.flow.volume_weeks", self.flow.volume_weeks),
            ("alerts.flow.silent_minutes", self.flow.silent_minutes),
            ("alerts.flow.lag_minutes", self.flow.lag_minutes),
            ("alerts.queues.agent_silent_minutes", self.queues.agent_silent_minutes),
            ("alerts.rates.window_hours", self.rates.window_hours),
            ("alerts.rates.baseline_days", self.rates.baseline_days),
            ("alerts.greylist.window_hours", self.greylist.window_hours),
            ("alerts.greylist.baseline_days", self.greylist.baseline_days),
            ("alerts.channels.max_attempts", self.channels.max_attempts as i64),
            ("alerts.channels.backoff_secs", self.channels.backoff_secs),
            ("alerts.channels.timeout_secs", self.channels.timeout_secs as i64),
        ];
        for (key, value) in positive {
            if value < 1 {
                return Err((key.to_owned(), "must be at least 1".to_owned()));
            }
        }
        if self.regroup_minutes < 0 {
            return Err(("alerts.regroup_minutes".to_owned(), "must not be negative".to_owned()));
        }
        let shares = [
            ("alerts.destination.min_increase", self.destination.min_increase),
            ("alerts.flow.volume_drop_share", self.flow.volume_drop_share),
            ("alerts.rates.min_increase", self.rates.min_increase),
            ("alerts.greylist.min_increase", self.greylist.min_increase),
        ];
        for (key, value) in shares {
            if !(0.0..=1.0).contains(&value) || value == 0.0 {
                return Err((
                    key.to_owned(),
                    format!("{value} is not a share between 0 (excluded) and 1"),
                ));
            }
        }
        for (i, address) in self.channels.email_to.iter().enumerate() {
            if address.parse::<lettre::Address>().is_err() {
                return Err((
                    format!("alerts.channels.email_to[{i}]"),
                    format!("'{address}' is not an e-mail address"),
                ));
            }
        }
        let urls = self
            .channels
            .webhooks
            .iter()
            .enumerate()
            .map(|(i, w)| (format!("alerts.channels.webhooks[{i}].url"), &w.url))
            .chain(
                self.channels
                    .alertmanager
                    .iter()
                    .enumerate()
                    .map(|(i, url)| (format!("alerts.channels.alertmanager[{i}]"), url)),
            );
        for (key, url) in urls {
            if !(url.starts_with("http://") || url.starts_with("https://")) || reqwest::Url::parse(url).is_err() {
                return Err((key, format!("'{url}' is not an http:// or https:// URL")));
            }
        }
        for (i, webhook) in self.channels.webhooks.iter().enumerate() {
            if webhook.secret.len() < 16 {
                return Err((
                    format!("alerts.channels.webhooks[{i}].secret"),
                    "must be at least 16 characters".to_owned(),
                ));
            }
        }
        Ok(())
    }
}
