//! Any bytes, as a syslog line or as an already split message from any program: no panic, and
//! every borrowed field lies inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omelse::parse::{parse_fields, parse_line, Clock, SyslogLine, Timestamp};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp(1_700_000_000_000_000));
    if let Some(parsed) = parse_line(&text, &mut clock) {
        let _ = serde_json_free_check(&parsed.event.kind.name());
    }
    for program in ["postfix/smtpd", "postfix/qmgr", "postfix/cleanup", "postfix/smtp", "postfix/postscreen", "postfix/submission/smtpd", "amavis", "postfix/bounce", "postfix/pickup", "postfix/postsuper", "postfix/anvil", "postfix/master", "postfix/dnsblog", "postfix/local", "postfix/pipe", "postfix/lmtp", "postfix/tlsproxy"] {
        let line = SyslogLine { time: Timestamp(0), host: "h", program, pid: Some(1), message: &text };
        let _ = parse_fields(line);
    }
});

fn serde_json_free_check(name: &str) -> usize {
    assert!(!name.is_empty());
    name.len()
}
