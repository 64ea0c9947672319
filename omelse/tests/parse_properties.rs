//! Properties of the parser over generated input: it never panics, keeps every line, and what it
//! extracts is found in the line it came from.

use omelse::correlate::Correlator;
use omelse::ingest::Pipeline;
use omelse::parse::{parse_fields, parse_line, Clock, SyslogLine, Timestamp};
use proptest::prelude::*;

const PROGRAMS: &[&str] = &[
    "postfix/smtpd",
    "postfix/qmgr",
    "postfix/cleanup",
    "postfix/smtp",
    "postfix/lmtp",
    "postfix/local",
    "postfix/pipe",
    "postfix/postscreen",
    "postfix/dnsblog",
    "postfix/bounce",
    "postfix/pickup",
    "postfix/postsuper",
    "postfix/anvil",
    "postfix/master",
    "postfix/tlsproxy",
    "postfix/submission/smtpd",
    "postfix-in/smtpd",
    "amavis",
    "dovecot",
    "other",
];

/// Message texts that look like Postfix's, with random pieces spliced in.
fn postfix_like() -> impl Strategy<Value = String> {
    let prefixes = prop::sample::select(vec![
        "4F2C11B0A3: to=<",
        "NOQUEUE: reject: RCPT from ",
        "connect from ",
        "disconnect from ",
        "4F2C11B0A3: client=",
        "4F2C11B0A3: from=<",
        "4F2C11B0A3: message-id=<",
        "CONNECT from [",
        "PASS NEW [",
        "4PbC7269xVz3tBr: removed",
        "warning: ",
        "statistics: max connection rate ",
        "4F2C11B0A3: sender non-delivery notification: ",
        "lost connection after ",
        "(12345-01) Passed CLEAN {RelayedInbound}, [",
        "4F2C11B0A3: host mx[1.2.3.4] said: ",
        "proxy-reject: END-OF-MESSAGE: ",
        "",
    ]);
    (prefixes, ".{0,200}").prop_map(|(prefix, rest)| format!("{prefix}{rest}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_message_from_any_program_parses_without_panic(program in prop::sample::select(PROGRAMS), message in postfix_like()) {
        let parsed = parse_fields(SyslogLine { time: Timestamp(0), host: "mx", program, pid: Some(42), message: &message });
        if let Some(queue_id) = parsed.event.queue_id {
            prop_assert!(message.contains(queue_id), "queue id {queue_id} not in {message}");
        }
    }

    #[test]
    fn any_line_parses_without_panic(line in ".{0,300}") {
        let mut clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp(1_700_000_000_000_000));
        if let Some(parsed) = parse_line(&line, &mut clock) {
            prop_assert!(line.contains(parsed.line.host));
            prop_assert!(line.contains(parsed.line.message));
        }
    }

    #[test]
    fn every_line_becomes_one_event_row(lines in prop::collection::vec(postfix_like(), 1..40)) {
        let clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp(1_700_000_000_000_000));
        let mut pipeline = Pipeline::new(clock, Correlator::new());
        for (i, message) in lines.iter().enumerate() {
            pipeline.push_line(&format!("Nov 14 22:13:{:02} mx postfix/smtpd[{}]: {message}", i % 60, 100 + i % 3));
        }
        let batch = pipeline.take_batch();
        prop_assert_eq!(batch.events.len(), lines.len());
        let mut keys: Vec<i64> = batch.events.iter().map(|e| e.line_key).collect();
        keys.sort_unstable();
        keys.dedup();
        prop_assert_eq!(keys.len(), lines.len(), "line keys are unique, even for identical lines");
    }
}
