//! The pattern table of the blocklist detector (`blocklists.toml`, compiled into elsed): which
//! remote replies say that our servers are blocklisted, judged for their reputation or
//! rate-limited, and which IP of ours they name.

use std::sync::OnceLock;

use regex::{Regex, RegexBuilder};
use serde::Deserialize;

/// The table's text, in the repository beside this file.
const TABLE: &str = include_str!("blocklists.toml");

/// One provider's replies.
#[derive(Debug)]
pub struct Pattern {
    pub name: String,
    /// blocklist, reputation or rate_limit.
    pub kind: String,
    pub advice: String,
    regex: Regex,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    pattern: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    kind: String,
    regex: String,
    advice: String,
}

/// The table, compiled once (a bad entry is a bug of the build, caught by the tests).
pub fn patterns() -> &'static [Pattern] {
    static PATTERNS: OnceLock<Vec<Pattern>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let table: Table = toml::from_str(TABLE).expect("blocklists.toml is valid");
        table
            .pattern
            .into_iter()
            .map(|e| Pattern {
                regex: RegexBuilder::new(&e.regex)
                    .case_insensitive(true)
                    .build()
                    .unwrap_or_else(|err| panic!("blocklists.toml, {}: {err}", e.name)),
                name: e.name,
                kind: e.kind,
                advice: e.advice,
            })
            .collect()
    })
}

/// What the remote site said, without Postfix's framing: the text after `said:` (the remote
/// host's own name and address come before it and are not ours), without `(in reply to …)`.
pub fn remote_reply(status_text: &str) -> &str {
    let reply = status_text.split_once(" said: ").map_or(status_text, |(_, r)| r);
    reply.rsplit_once(" (in reply to ").map_or(reply, |(r, _)| r)
}

/// The first pattern that matches a reply (deferral or bounce status text).
pub fn classify(status_text: &str) -> Option<&'static Pattern> {
    let reply = remote_reply(status_text);
    patterns().iter().find(|p| p.regex.is_match(reply))
}

/// The IPv4 address of ours a reply names (`messages from [192.0.2.1]`, `Client host [192.0.2.1]
/// blocked`, `Messages from 192.0.2.1 temporarily deferred`), if any.
pub fn named_ip(status_text: &str) -> Option<std::net::Ipv4Addr> {
    static IP: OnceLock<Regex> = OnceLock::new();
    let ip = IP.get_or_init(|| Regex::new(r"\b(\d{1,3}(?:\.\d{1,3}){3})\b").expect("a valid regex"));
    ip.captures_iter(remote_reply(status_text))
        .filter_map(|c| c[1].parse().ok())
        .next()
}

#[cfg(test)]
mod tests {
    use super::{classify, named_ip, patterns};

    /// Replies written for these tests in the form each provider uses (as its public
    /// documentation describes it, with documentation addresses; nothing copied from the
    /// corpora, whose licences are not ours), as Postfix logs them, and the provider each must be
    /// recognised as, with the IP of ours it names.
    const REPLIES: &[(&str, &str, Option<&str>)] = &[
        (
            "host outlook-com.olc.protection.outlook.com[198.18.4.10] said: 550 5.7.1 Unfortunately, messages from [192.0.2.10] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3140). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. [AM0EUR02FT001.eop-EUR02.prod.protection.outlook.com] (in reply to MAIL FROM command)",
            "Microsoft (S3140/S3150)",
            Some("192.0.2.10"),
        ),
        (
            "host eur.olc.protection.outlook.com[198.18.4.11] said: 550 5.7.1 Unfortunately, messages from [198.51.100.7] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. [HE1EUR04FT002.eop-EUR04.prod.protection.outlook.com] (in reply to MAIL FROM command)",
            "Microsoft (S3140/S3150)",
            Some("198.51.100.7"),
        ),
        (
            "host gmail-smtp-in.l.google.com[198.18.7.27] said: 550-5.7.1 [192.0.2.20] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail, 550-5.7.1 this message has been blocked. For more information, visit 550 5.7.1 https://support.google.com/mail/?p=UnsolicitedMessageError x12si345 - gsmtp (in reply to end of DATA command)",
            "Gmail (reputation)",
            Some("192.0.2.20"),
        ),
        (
            "host gmail-smtp-in.l.google.com[198.18.7.26] said: 421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating 421-4.7.28 from your IP address. To protect our users from spam, mail sent from your IP 421-4.7.28 address has been temporarily rate limited. For more information, go to 421 4.7.28 https://support.google.com/mail/?p=UnsolicitedRateLimitError y34si678 - gsmtp (in reply to end of DATA command)",
            "Gmail (rate limited)",
            None,
        ),
        (
            "host alt1.gmail-smtp-in.l.google.com[198.18.7.28] said: 421-4.7.0 Our system has detected that this message is suspicious due to 421-4.7.0 the very low reputation of the sending IP address. To protect our users 421-4.7.0 from spam, mail sent from your IP address has been temporarily rate limited. 421 4.7.0 For more information, go to https://support.google.com/mail/answer/188131 z56si901 - gsmtp (in reply to end of DATA command)",
            "Gmail (rate limited)",
            None,
        ),
        (
            "host mta5.am0.yahoodns.net[198.18.9.5] said: 421 4.7.0 [TSS04] Messages from 203.0.113.40 temporarily deferred due to unexpected volume or user complaints - 4.16.55.1; see https://postmaster.yahooinc.com/error-codes (in reply to MAIL FROM command)",
            "Yahoo (TS codes)",
            Some("203.0.113.40"),
        ),
        (
            "host mx.example.net[203.0.113.5] said: 554 5.7.1 Service unavailable; Client host [192.0.2.44] blocked using zen.spamhaus.org; https://www.spamhaus.org/query/ip/192.0.2.44 (in reply to RCPT TO command)",
            "Spamhaus",
            Some("192.0.2.44"),
        ),
        (
            "host mx.example.org[203.0.113.9] said: 554 5.7.1 Service unavailable; Client host [192.0.2.45] blocked using bl.spamcop.net; Blocked - see https://www.spamcop.net/bl.shtml?192.0.2.45 (in reply to RCPT TO command)",
            "SpamCop",
            Some("192.0.2.45"),
        ),
        (
            "host mx.example.com[203.0.113.10] said: 554 Service unavailable; Client host [192.0.2.46] blocked using Barracuda Reputation; http://www.barracudanetworks.com/reputation/?pr=1&ip=192.0.2.46 (in reply to RCPT TO command)",
            "Barracuda",
            Some("192.0.2.46"),
        ),
        (
            "host mx.163.example[198.18.12.1] said: 451 DT:SPM 126 smtp7,DcmowAB1cXYZ--.31337S2 1700000000, please try again 15min later (in reply to end of DATA command)",
            "NetEase (DT:SPM)",
            None,
        ),
    ];

    #[test]
    fn the_table_compiles_and_names_each_provider_of_its_replies() {
        assert!(patterns().len() >= 10);
        for (reply, provider, ip) in REPLIES {
            let found = classify(reply).map(|p| p.name.as_str());
            assert_eq!(found, Some(*provider), "{reply}");
            assert_eq!(named_ip(reply).map(|ip| ip.to_string()).as_deref(), *ip, "{reply}");
        }
    }

    #[test]
    fn ordinary_failures_are_not_blocklistings() {
        // Failures about the recipient or the network, not about us (written for this test).
        let ordinary = [
            "host aspmx.l.google.com[198.18.7.30] said: 550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. a1si2 - gsmtp (in reply to RCPT TO command)",
            "host mx2.example.com[203.0.113.61] said: 452 4.2.2 <carol@example.com>: mailbox full, try again later (in reply to RCPT TO command)",
            "host mx.university.example[203.0.113.62] said: 451-4.7.1 Greylisted, please retry in a few minutes. Your mail server will 451 4.7.1 try again by itself. (in reply to RCPT TO command)",
            "delivery temporarily suspended: lost connection with mta6.am0.yahoodns.net[198.18.9.6] while sending RCPT TO",
            "connect to mx.example.net[203.0.113.5]:25: Connection timed out",
        ];
        for reply in ordinary {
            assert_eq!(classify(reply).map(|p| &p.name), None, "{reply}");
        }
    }
}
