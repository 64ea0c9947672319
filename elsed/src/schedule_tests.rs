//! A scheduled report goes through a real Postfix (the relay) into a mailbox, and the totals in
//! the mail are the group's report for the previous day.

use std::time::Duration;

use else_tests::postfix::{self, PrivatePostfix};
use else_tests::rsyslogd::free_port;

use super::*;
use crate::test_fixtures::{group, imported};

/// A Postfix accepting mail for `reports.test` on `port` and delivering it to mbox files.
fn relay(port: u16) -> PrivatePostfix {
    let instance = PrivatePostfix::prepare("else-reports-relay");
    let d = instance.dir.display().to_string();
    let id = |flag: &str| {
        let out = std::process::Command::new("id")
            .args([flag, "postfix"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    std::fs::create_dir_all(instance.dir.join("mail")).unwrap();
    std::process::Command::new("chown")
        .arg("postfix:")
        .arg(instance.dir.join("mail"))
        .status()
        .unwrap();
    std::fs::write(instance.dir.join("etc/vmailbox"), "ops@reports.test ops.mbox\n").unwrap();
    let main = format!(
        "myhostname = relay.reports.test
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = reports.test
virtual_mailbox_base = {d}/mail
virtual_mailbox_maps = texthash:{d}/etc/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
",
        uid = id("-u"),
        gid = id("-g"),
    );
    let listeners = format!("127.0.0.1:{port} inet n - n - - smtpd\nvirtual unix - n n - - virtual\n");
    instance.start(&main, &listeners, &[])
}

#[tokio::test]
async fn the_daily_report_of_a_group_reaches_its_mailbox_through_the_relay() {
    if !postfix::available() {
        return;
    }
    let log = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail.log");
    let (mut client, _) = imported(&log).await;
    // The busiest day, server and recipient domain of the log.
    let row = client
        .query_one(
            "SELECT date_trunc('day', d.ts, 'UTC'), d.server_id, else_domain(d.recipient), count(*)
             FROM deliveries d WHERE d.status = 'sent' GROUP BY 1, 2, 3 ORDER BY 4 DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let (day, server, domain): (Timestamp, i32, String) = (row.get(0), row.get(1), row.get(2));
    let group_id = group(&mut client, server, &domain).await;
    let change = Change {
        group_id: Some(group_id),
        recipients: Some(vec!["ops@reports.test".into()]),
        hour: Some(0),
        format: Some("json".into()),
    };
    let created = create(&client, &change).await.unwrap();
    assert_eq!(list(&client).await.unwrap(), vec![created]);

    let port = free_port();
    let postfix = relay(port);
    let config = ReportsConfig {
        relay_host: "127.0.0.1".into(),
        relay_port: port,
        ..ReportsConfig::default()
    };
    // One hour into the next day: yesterday's report is due, once.
    let now = day.to_jiff() + jiff::SignedDuration::from_hours(25);
    assert_eq!(send_due(&client, &config, now).await.unwrap(), 1);
    assert_eq!(send_due(&client, &config, now).await.unwrap(), 0);

    let mbox = postfix.dir.join("mail/ops.mbox");
    let mut text = String::new();
    for _ in 0..300 {
        text = std::fs::read_to_string(&mbox).unwrap_or_default();
        if !text.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!text.is_empty(), "no mail delivered; Postfix log:\n{}", postfix.log());
    let raw = text.split_once('\n').map(|(_, rest)| rest).unwrap_or(&text);
    let mail = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .expect("a mail");
    assert!(
        mail.subject().unwrap_or("").contains("example customers"),
        "{:?}",
        mail.subject()
    );
    // A single-part message: its one part is the report, decoded from its transfer encoding.
    let body: serde_json::Value = serde_json::from_slice(mail.parts[0].contents()).expect("the JSON report");

    // The same report computed here.
    let scope = report::Scope {
        since: Some(day),
        until: Some(Timestamp(day.0 + 86_400_000_000)),
        pairs: Some((vec![server], vec![domain])),
        ..report::Scope::default()
    };
    let covered = report::Covered {
        since: None,
        until: None,
        host: None,
        domain: None,
        timezone: "UTC".into(),
    };
    let expected = report::build(&client, &scope, covered, 0).await.unwrap();
    let expected = serde_json::to_value(&expected.grand_totals).unwrap();
    assert_eq!(body["grand_totals"], expected);
    assert!(expected["delivered"].as_i64().unwrap() > 0, "{expected}");
}
