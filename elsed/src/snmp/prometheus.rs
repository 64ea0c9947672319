//! The poller's latest values in Prometheus' text exposition format (version 0.0.4), for
//! `/metrics`: one series per server (and queue), from the latest sample of each server.

use std::fmt::Write;

use tokio_postgres::Client;

use super::{latest_states, Sample, ServerState, State};

/// The text of `/metrics`.
pub async fn prometheus_text(db: &Client) -> anyhow::Result<String> {
    Ok(render(&latest_states(db).await?))
}

/// A label value with `\`, `"` and newlines escaped as the format wants.
fn label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn render(states: &[ServerState]) -> String {
    let mut out = String::new();
    let mut family = |name: &str, help: &str, lines: Vec<String>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for line in lines {
            let _ = writeln!(out, "{name}{line}");
        }
    };
    let each = |f: &dyn Fn(&ServerState, &str) -> Vec<String>| -> Vec<String> {
        states.iter().flat_map(|s| f(s, &label(&s.server))).collect()
    };
    family(
        "else_server_state",
        "Health of the server by ELSE's thresholds: 1 for its current state.",
        each(&|s, server| {
            [State::Ok, State::Warning, State::Down, State::Unknown]
                .iter()
                .map(|st| {
                    format!(
                        "{{server=\"{server}\",state=\"{}\"}} {}",
                        st.name(),
                        u8::from(*st == s.state)
                    )
                })
                .collect()
        }),
    );
    // One value a server, from its latest sample when it has one.
    let scalar = |value: &dyn Fn(&Sample) -> Option<String>| {
        each(&|s, server| {
            s.sample
                .iter()
                .filter_map(value)
                .map(|v| format!("{{server=\"{server}\"}} {v}"))
                .collect()
        })
    };
    family(
        "else_snmp_up",
        "1 if the server's SNMP agent answered the last poll.",
        scalar(&|x| Some(u8::from(x.reachable).to_string())),
    );
    family(
        "else_snmp_last_poll_timestamp_seconds",
        "When the server was last polled (Unix time).",
        scalar(&|x| Some((x.ts.0 as f64 / 1e6).to_string())),
    );
    let queues = |what: fn(&super::QueueSample) -> i64| {
        each(&move |s, server| {
            s.sample
                .iter()
                .flat_map(|x| x.queues())
                .filter_map(|(queue, q)| q.map(|q| format!("{{server=\"{server}\",queue=\"{queue}\"}} {}", what(&q))))
                .collect()
        })
    };
    family(
        "else_postfix_queue_messages",
        "Messages in the Postfix queue.",
        queues(|q| q.count),
    );
    family(
        "else_postfix_queue_bytes",
        "Bytes of the messages in the Postfix queue.",
        queues(|q| q.bytes),
    );
    family(
        "else_postfix_queue_oldest_seconds",
        "Age of the oldest message in the Postfix queue (0 when empty).",
        queues(|q| q.oldest_secs),
    );
    family(
        "else_postfix_master_up",
        "1 if the Postfix master process runs.",
        scalar(&|x| x.master_alive.map(|up| u8::from(up).to_string())),
    );
    family(
        "else_load1",
        "One-minute load average of the server.",
        scalar(&|x| x.load1.map(|l| l.to_string())),
    );
    family(
        "else_spool_disk_used_percent",
        "Percent used of the file system of the Postfix queue directory.",
        scalar(&|x| x.spool_used_pct.map(|p| p.to_string())),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::super::QueueSample;
    use super::*;

    #[test]
    fn series_per_server_and_queue_with_escaped_labels() {
        let sample = Sample {
            server_id: 1,
            ts: omelse::parse::Timestamp::from_unix_seconds(1_700_000_000),
            reachable: true,
            error: None,
            incoming: Some(QueueSample::default()),
            active: Some(QueueSample::default()),
            deferred: Some(QueueSample {
                count: 3,
                bytes: 900,
                oldest_secs: 60,
            }),
            hold: Some(QueueSample::default()),
            master_alive: Some(true),
            load1: Some(0.25),
            spool_used_pct: Some(40),
            state: State::Warning,
            reasons: vec![],
        };
        let states = [
            ServerState {
                server_id: 1,
                server: "mx\"1".into(),
                enabled: true,
                state: State::Warning,
                sample: Some(sample),
            },
            ServerState {
                server_id: 2,
                server: "out1".into(),
                enabled: true,
                state: State::Unknown,
                sample: None,
            },
        ];
        let text = render(&states);
        for line in [
            "# TYPE else_postfix_queue_messages gauge",
            "else_postfix_queue_messages{server=\"mx\\\"1\",queue=\"deferred\"} 3",
            "else_postfix_queue_bytes{server=\"mx\\\"1\",queue=\"deferred\"} 900",
            "else_server_state{server=\"mx\\\"1\",state=\"warning\"} 1",
            "else_server_state{server=\"out1\",state=\"unknown\"} 1",
            "else_snmp_up{server=\"mx\\\"1\"} 1",
            "else_snmp_last_poll_timestamp_seconds{server=\"mx\\\"1\"} 1700000000",
            "else_load1{server=\"mx\\\"1\"} 0.25",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert!(!text.contains("else_snmp_up{server=\"out1\"}"));
    }
}
