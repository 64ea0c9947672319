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

    /// Real replies (from the corpora in ../shared/corpora and providers' public documentation),
    /// as Postfix logs them, and the provider each must be recognised as.
    const REPLIES: &[(&str, &str, Option<&str>)] = &[
        (
            "host hotmail-com.olc.protection.outlook.com[104.47.10.33] said: 550 5.7.1 Unfortunately, messages from [142.93.169.220] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3140). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. [DB5EUR03FT012.eop-EUR03.prod.protection.outlook.com] (in reply to MAIL FROM command)",
            "Microsoft (S3140/S3150)",
            Some("142.93.169.220"),
        ),
        (
            "host eur.olc.protection.outlook.com[104.47.1.33] said: 550 5.7.1 Unfortunately, messages from [198.51.100.7] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3150). You can also refer your provider to http://mail.live.com/mail/troubleshooting.aspx#errors. [VE1EUR01FT080.eop-EUR01.prod.protection.outlook.com] (in reply to MAIL FROM command)",
            "Microsoft (S3140/S3150)",
            Some("198.51.100.7"),
        ),
        (
            "host gmail-smtp-in.l.google.com[2607:f8b0:400e:c04::1b] said: 550-5.7.1 [2607:4100:3:25:100::2      12] Our system has detected that this 550-5.7.1 message is likely unsolicited mail. To reduce the amount of spam sent 550-5.7.1 to Gmail, this message has been blocked. Please visit 550-5.7.1 https://support.google.com/mail/?p=UnsolicitedMessageError 550 5.7.1  for more information. u1si123 - gsmtp (in reply to end of DATA command)",
            "Gmail (reputation)",
            None,
        ),
        (
            "host gmail-smtp-in.l.google.com[142.250.102.27] said: 421-4.7.28 Gmail has detected an unusual rate of unsolicited mail. To protect 421-4.7.28 our users from spam, mail has been temporarily rate limited. Please 421-4.7.28 visit 421-4.7.28 https://support.google.com/mail/?p=UnsolicitedRateLimitError to 421 4.7.28 review our Bulk Email Senders Guidelines. m17-20020a67f711000000b0045d8a438106si295017vso.199 - gsmtp (in reply to end of DATA command)",
            "Gmail (rate limited)",
            None,
        ),
        (
            "host gmail-smtp-in.l.google.com[142.250.102.26] said: 421-4.7.0 Our system has detected that this message is 421-4.7.0 suspicious due to the very low reputation of the sending IP address. 421-4.7.0 To protect our users from spam, mail sent from your IP address has 421-4.7.0 been temporarily rate limited. Please visit 421 4.7.0 https://support.google.com/mail/answer/188131 for more information. - gsmtp (in reply to end of DATA command)",
            "Gmail (rate limited)",
            None,
        ),
        (
            "host mx-aol.mail.gm0.yahoodns.net[11.22.33.44] said: 421 4.7.0 [TSS04] Messages from 10.20.30.40 temporarily deferred due to user complaints - 4.16.55.1; see https://help.yahoo.com/kb/postmaster/SLN3434.html (in reply to MAIL FROM command)",
            "Yahoo (TS codes)",
            Some("10.20.30.40"),
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
            "host mail.domain.com[1.1.1.1] said: 451 DT:SPM 163 mx40,WsCowAAnEhlCoEVa5GjcAA--.20089S3 1514512452, please try again 15min later (in reply to end of DATA command)",
            "NetEase (DT:SPM)",
            None,
        ),
    ];

    #[test]
    fn the_table_compiles_and_names_each_provider_of_the_real_replies() {
        assert!(patterns().len() >= 10);
        for (reply, provider, ip) in REPLIES {
            let found = classify(reply).map(|p| p.name.as_str());
            assert_eq!(found, Some(*provider), "{reply}");
            assert_eq!(named_ip(reply).map(|ip| ip.to_string()).as_deref(), *ip, "{reply}");
        }
    }

    #[test]
    fn ordinary_failures_are_not_blocklistings() {
        // Real replies of the corpora that are about the recipient, not about us.
        let ordinary = [
            "host aspmx.l.google.com[74.125.143.26] said: 550-5.1.1 The email account that you tried to reach does not exist. Please try 550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary spaces. (in reply to RCPT TO command)",
            "host ALT2.ASPMX.L.GOOGLE.com[3.155.237.60] said: 452 4.1.1 <h-664d01@h-695da2287.com> user is over quota, please try again later (in reply to RCPT TO command)",
            "host mailin6.zih.recipient.relay.example.com[141.30.67.69] said: 451-You have been greylisted. This is part of our standard anti-spam measures 451-and your mail system should automatically try again later. (in reply to RCPT TO command)",
            "delivery temporarily suspended: lost connection with mta7.am0.yahoodns.net[98.136.216.22] while sending RCPT TO",
            "connect to mx.example.net[203.0.113.5]:25: Connection timed out",
        ];
        for reply in ordinary {
            assert_eq!(classify(reply).map(|p| &p.name), None, "{reply}");
        }
    }
}
