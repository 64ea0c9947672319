//! Two customers on one shared pair of servers: every list, detail, CSV, live and log endpoint
//! answers each caller exactly what the scope rules of docs/api.md give, compared with a ground
//! truth this test computes from the log lines themselves (queue id lives, sessions, `from=`/`to=`),
//! not with the server's SQL.
//!
//! The log: the repository's fixture (example.com, nobody's here) followed by the customers'
//! traffic on the same `mx1` (incoming) and `out1` (outgoing): inbound mail to each, mail to both,
//! a forged sender (someone on the Internet sending *from* customer A to customer B), a NOQUEUE
//! reject with the same forgery, a short queue id reused by another customer's mail, an
//! authenticated submission and a relay from an internal network, and lines of no message.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::*;

const A: &str = "customer-a.example";
const B: &str = "customer-b.example";

const TENANTS_LOG: &str = "\
Mar 14 11:00:00 mx1 postfix/smtpd[2001]: connect from mail.example.net[198.51.100.23]
Mar 14 11:00:01 mx1 postfix/smtpd[2001]: 5A5A5A5A5A: client=mail.example.net[198.51.100.23]
Mar 14 11:00:01 mx1 postfix/cleanup[2002]: 5A5A5A5A5A: message-id=<m1@example.net>
Mar 14 11:00:01 mx1 postfix/qmgr[815]: 5A5A5A5A5A: from=<carol@example.net>, size=1000, nrcpt=1 (queue active)
Mar 14 11:00:02 mx1 postfix/smtpd[2001]: disconnect from mail.example.net[198.51.100.23] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Mar 14 11:00:02 mx1 postfix/lmtp[2003]: 5A5A5A5A5A: to=<ann@customer-a.example>, relay=mail.customer-a.example[private/dovecot-lmtp], delay=0.5, delays=0.1/0.01/0.02/0.37, dsn=2.0.0, status=sent (250 2.0.0 <ann@customer-a.example> Saved)
Mar 14 11:00:02 mx1 postfix/qmgr[815]: 5A5A5A5A5A: removed
Mar 14 11:05:00 mx1 postfix/smtpd[2011]: connect from forger.example[203.0.113.66]
Mar 14 11:05:01 mx1 postfix/smtpd[2011]: 6B6B6B6B6B: client=forger.example[203.0.113.66]
Mar 14 11:05:01 mx1 postfix/cleanup[2002]: 6B6B6B6B6B: message-id=<forged@forger.example>
Mar 14 11:05:01 mx1 postfix/qmgr[815]: 6B6B6B6B6B: from=<boss@customer-a.example>, size=2000, nrcpt=1 (queue active)
Mar 14 11:05:02 mx1 postfix/smtpd[2011]: disconnect from forger.example[203.0.113.66] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Mar 14 11:05:02 mx1 postfix/lmtp[2003]: 6B6B6B6B6B: to=<bea@customer-b.example>, relay=mail.customer-b.example[private/dovecot-lmtp], delay=0.5, delays=0.1/0.01/0.02/0.37, dsn=2.0.0, status=sent (250 2.0.0 <bea@customer-b.example> Saved)
Mar 14 11:05:02 mx1 postfix/qmgr[815]: 6B6B6B6B6B: removed
Mar 14 11:10:00 mx1 postfix/smtpd[2021]: connect from news.example.net[198.51.100.40]
Mar 14 11:10:00 mx1 postfix/smtpd[2021]: Anonymous TLS connection established from news.example.net[198.51.100.40]: TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)
Mar 14 11:10:01 mx1 postfix/smtpd[2021]: 7C7C7C7C7C: client=news.example.net[198.51.100.40]
Mar 14 11:10:01 mx1 postfix/cleanup[2002]: 7C7C7C7C7C: message-id=<news@example.net>
Mar 14 11:10:01 mx1 postfix/qmgr[815]: 7C7C7C7C7C: from=<news@example.net>, size=3000, nrcpt=2 (queue active)
Mar 14 11:10:02 mx1 postfix/smtpd[2021]: disconnect from news.example.net[198.51.100.40] ehlo=2 starttls=1 mail=1 rcpt=2 data=1 quit=1 commands=8
Mar 14 11:10:02 mx1 postfix/lmtp[2003]: 7C7C7C7C7C: to=<ann@customer-a.example>, relay=mail.customer-a.example[private/dovecot-lmtp], delay=0.5, delays=0.1/0.01/0.02/0.37, dsn=2.0.0, status=sent (250 2.0.0 <ann@customer-a.example> Saved)
Mar 14 11:10:02 mx1 postfix/lmtp[2003]: 7C7C7C7C7C: to=<bea@customer-b.example>, relay=mail.customer-b.example[private/dovecot-lmtp], delay=0.5, delays=0.1/0.01/0.02/0.37, dsn=5.1.1, status=bounced (550 5.1.1 <bea@customer-b.example> User unknown)
Mar 14 11:10:02 mx1 postfix/qmgr[815]: 7C7C7C7C7C: removed
Mar 14 11:15:00 mx1 postfix/smtpd[2041]: connect from forger.example[203.0.113.66]
Mar 14 11:15:01 mx1 postfix/smtpd[2041]: NOQUEUE: reject: RCPT from forger.example[203.0.113.66]: 550 5.1.1 <nobody@customer-b.example>: Recipient address rejected: User unknown in virtual mailbox table; from=<boss@customer-a.example> to=<nobody@customer-b.example> proto=ESMTP helo=<forger.example>
Mar 14 11:15:01 mx1 postfix/smtpd[2041]: disconnect from forger.example[203.0.113.66] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4
Mar 14 11:16:00 mx1 postfix/smtpd[2051]: connect from unknown[203.0.113.80]
Mar 14 11:16:01 mx1 postfix/smtpd[2051]: NOQUEUE: reject: RCPT from unknown[203.0.113.80]: 554 5.7.1 <ghost@customer-a.example>: Recipient address rejected: Access denied; from=<spam@example.org> to=<ghost@customer-a.example> proto=ESMTP helo=<spam.example.org>
Mar 14 11:16:01 mx1 postfix/smtpd[2051]: disconnect from unknown[203.0.113.80] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4
Mar 14 11:20:00 mx1 postfix/smtpd[2031]: connect from mail.example.org[203.0.113.5]
Mar 14 11:20:01 mx1 postfix/smtpd[2031]: 5A5A5A5A5A: client=mail.example.org[203.0.113.5]
Mar 14 11:20:01 mx1 postfix/cleanup[2002]: 5A5A5A5A5A: message-id=<reused@example.org>
Mar 14 11:20:01 mx1 postfix/qmgr[815]: 5A5A5A5A5A: from=<promo@example.org>, size=500, nrcpt=1 (queue active)
Mar 14 11:20:02 mx1 postfix/smtpd[2031]: disconnect from mail.example.org[203.0.113.5] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Mar 14 11:20:02 mx1 postfix/lmtp[2003]: 5A5A5A5A5A: to=<zed@example.com>, relay=mail.example.com[private/dovecot-lmtp], delay=0.5, delays=0.1/0.01/0.02/0.37, dsn=2.0.0, status=sent (250 2.0.0 <zed@example.com> Saved)
Mar 14 11:20:02 mx1 postfix/qmgr[815]: 5A5A5A5A5A: removed
Mar 14 11:25:00 mx1 postfix/smtpd[2051]: warning: hostname 203-0-113-81.example.invalid does not resolve to address 203.0.113.81: Name or service not known
Mar 14 11:30:00 out1 postfix/submission/smtpd[3401]: connect from laptop.customer-a.example[192.0.2.60]
Mar 14 11:30:01 out1 postfix/submission/smtpd[3401]: 8D8D8D8D8D: client=laptop.customer-a.example[192.0.2.60], sasl_method=PLAIN, sasl_username=ann
Mar 14 11:30:01 out1 postfix/cleanup[3305]: 8D8D8D8D8D: message-id=<sent@customer-a.example>
Mar 14 11:30:01 out1 postfix/qmgr[3010]: 8D8D8D8D8D: from=<ann@customer-a.example>, size=1200, nrcpt=1 (queue active)
Mar 14 11:30:02 out1 postfix/submission/smtpd[3401]: disconnect from laptop.customer-a.example[192.0.2.60] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8
Mar 14 11:30:03 out1 postfix/smtp[3310]: 8D8D8D8D8D: to=<xavier@example.org>, relay=mx.example.org[203.0.113.5]:25, delay=2, delays=0.1/0.01/1/0.89, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 1F2E3D)
Mar 14 11:30:03 out1 postfix/qmgr[3010]: 8D8D8D8D8D: removed
Mar 14 11:35:00 out1 postfix/smtpd[3411]: connect from app.customer-b.example[10.1.2.3]
Mar 14 11:35:01 out1 postfix/smtpd[3411]: 9E9E9E9E9E: client=app.customer-b.example[10.1.2.3]
Mar 14 11:35:01 out1 postfix/cleanup[3305]: 9E9E9E9E9E: message-id=<app@customer-b.example>
Mar 14 11:35:01 out1 postfix/qmgr[3010]: 9E9E9E9E9E: from=<bob@customer-b.example>, size=900, nrcpt=1 (queue active)
Mar 14 11:35:02 out1 postfix/smtpd[3411]: disconnect from app.customer-b.example[10.1.2.3] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Mar 14 11:35:03 out1 postfix/smtp[3312]: 9E9E9E9E9E: to=<yves@example.org>, relay=mx.example.org[203.0.113.5]:25, delay=2, delays=0.1/0.01/1/0.89, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as 2F3E4D)
Mar 14 11:35:03 out1 postfix/qmgr[3010]: 9E9E9E9E9E: removed
Mar 14 11:50:00 out1 postfix/master[3000]: daemon started -- version 3.7.11, configuration /etc/postfix
";

/// One line as the ground truth reads it.
#[derive(Debug, Clone)]
struct Line {
    server: String,
    /// The message part, after `program[pid]: ` (what the API calls `raw`).
    raw: String,
}

/// A life of a queue id on one server: from its first line to `removed`.
#[derive(Debug, Default)]
struct Life {
    server: String,
    queue_id: String,
    sender: Option<String>,
    recipients: Vec<String>,
    /// Authenticated, or from an internal network (the correlator's defaults: loopback and private
    /// ranges): the sender is vouched for.
    vouched: bool,
    lines: Vec<usize>,
    session: Option<usize>,
}

#[derive(Debug)]
struct Reject {
    sender: String,
    recipient: String,
    line: usize,
    session: usize,
}

/// What the log says, read without ELSE's parser: lines, lives, smtpd sessions, rejects.
#[derive(Debug, Default)]
struct Truth {
    lines: Vec<Line>,
    lives: Vec<Life>,
    /// Each session's lines.
    sessions: Vec<Vec<usize>>,
    rejects: Vec<Reject>,
}

fn between<'a>(text: &'a str, start: &str, end: char) -> Option<&'a str> {
    let rest = &text[text.find(start)? + start.len()..];
    Some(&rest[..rest.find(end)?])
}

fn domain(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

/// Postfix's short (upper-case hex) or long (base 52 without vowels) queue ids.
fn is_queue_id(text: &str) -> bool {
    let short = text.chars().all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c));
    let long = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() && !"AEIOUaeiou".contains(c));
    text.len() >= 6 && (short || long)
}

fn internal(ip: &str) -> bool {
    let octets: Vec<u8> = ip.split('.').filter_map(|o| o.parse().ok()).collect();
    matches!(octets[..], [10, ..] | [127, ..] | [192, 168, ..])
        || matches!(octets[..], [172, b, ..] if (16..32).contains(&b))
}

impl Truth {
    fn read(log: &str) -> Truth {
        let mut truth = Truth::default();
        let mut open_lives: HashMap<(String, String), usize> = HashMap::new();
        let mut open_sessions: HashMap<(String, String), usize> = HashMap::new();
        for text in log.lines().filter(|l| !l.trim().is_empty()) {
            let index = truth.lines.len();
            let fields: Vec<&str> = text.splitn(5, ' ').collect();
            let Some((server, (tag, raw))) = (fields.len() == 5 && fields[2].contains(':'))
                .then(|| fields[4].split_once(": ").map(|parts| (fields[3].to_owned(), parts)))
                .flatten()
            else {
                // No syslog envelope: ELSE keeps it whole, under the server of the line before.
                let server = truth.lines.last().map(|l| l.server.clone()).unwrap_or_default();
                truth.lines.push(Line {
                    server,
                    raw: text.to_owned(),
                });
                continue;
            };
            let program = tag.split('[').next().unwrap().to_owned();
            truth.lines.push(Line {
                server: server.clone(),
                raw: raw.to_owned(),
            });
            let smtpd = program.ends_with("/smtpd");
            let session_key = (server.clone(), tag.to_owned());
            if smtpd && raw.starts_with("connect from ") {
                open_sessions.insert(session_key.clone(), truth.sessions.len());
                truth.sessions.push(Vec::new());
            }
            let session = if smtpd {
                open_sessions.get(&session_key).copied()
            } else {
                None
            };
            if let Some(s) = session {
                truth.sessions[s].push(index);
            }
            if smtpd && raw.starts_with("disconnect from ") {
                open_sessions.remove(&session_key);
            }
            if raw.starts_with("NOQUEUE: reject: ") {
                truth.rejects.push(Reject {
                    sender: between(raw, "from=<", '>').unwrap().to_owned(),
                    recipient: between(raw, "to=<", '>').unwrap().to_owned(),
                    line: index,
                    session: session.unwrap(),
                });
                continue;
            }
            // A content filter's verdict names the queue id it came from.
            if let Some(queue_id) = between(raw, "Queue-ID: ", ',') {
                if let Some(&life) = open_lives.get(&(server.clone(), queue_id.to_owned())) {
                    truth.lives[life].lines.push(index);
                }
                continue;
            }
            let Some((queue_id, event)) = raw.split_once(": ") else {
                continue;
            };
            if !is_queue_id(queue_id) {
                continue;
            }
            let key = (server.clone(), queue_id.to_owned());
            let life = *open_lives.entry(key.clone()).or_insert_with(|| {
                truth.lives.push(Life {
                    server: server.clone(),
                    queue_id: queue_id.to_owned(),
                    ..Life::default()
                });
                truth.lives.len() - 1
            });
            let life_ref = &mut truth.lives[life];
            life_ref.lines.push(index);
            if let Some(client) = event.strip_prefix("client=") {
                life_ref.session = session;
                let ip = between(client, "[", ']').unwrap_or("");
                life_ref.vouched = client.contains("sasl_username=") || internal(ip);
            }
            if program.ends_with("/pickup") {
                life_ref.vouched = true;
            }
            if program.ends_with("/qmgr") && event.starts_with("from=<") {
                life_ref.sender = between(event, "from=<", '>').map(str::to_owned);
            }
            if let Some(to) = event.strip_prefix("to=<").and_then(|t| t.split('>').next()) {
                if !life_ref.recipients.iter().any(|r| r == to) {
                    life_ref.recipients.push(to.to_owned());
                }
            }
            if event == "removed" {
                open_lives.remove(&key);
            }
        }
        truth
    }
}

/// A caller as the ground truth sees it.
#[derive(Debug, Clone)]
enum Who {
    Admin,
    /// A group of both servers and one domain, owning `whole` servers whole.
    Member {
        domain: &'static str,
        whole: Vec<&'static str>,
    },
    EndUser {
        address: &'static str,
    },
}

impl Who {
    fn party(&self, address: &str) -> bool {
        let address = address.to_lowercase();
        match self {
            Who::Admin => true,
            Who::Member { domain: own, .. } => domain(&address) == *own,
            Who::EndUser { address: own } => address == *own,
        }
    }

    /// The recipients of `life` this caller may see; `None` when the message is not visible.
    fn recipients(&self, life: &Life) -> Option<Vec<String>> {
        let by_sender = life.vouched && life.sender.as_deref().is_some_and(|s| self.party(s));
        if matches!(self, Who::Admin) || by_sender {
            return Some(life.recipients.clone());
        }
        let own: Vec<String> = life.recipients.iter().filter(|r| self.party(r)).cloned().collect();
        (!own.is_empty()).then_some(own)
    }

    fn sees_reject(&self, reject: &Reject) -> bool {
        // Nothing vouches for an unauthenticated client's sender.
        self.party(&reject.recipient)
    }

    /// The lines this caller may see, as sorted (server, raw) pairs (a line may be logged twice).
    fn lines(&self, truth: &Truth) -> Vec<(String, String)> {
        let mut visible: BTreeSet<usize> = BTreeSet::new();
        let member = matches!(self, Who::Member { .. });
        for life in truth.lives.iter().filter(|l| self.recipients(l).is_some()) {
            visible.extend(&life.lines);
            if let (true, Some(s)) = (member, life.session) {
                visible.extend(&truth.sessions[s]);
            }
        }
        for reject in truth.rejects.iter().filter(|r| self.sees_reject(r)) {
            visible.insert(reject.line);
            if member {
                visible.extend(&truth.sessions[reject.session]);
            }
        }
        truth
            .lines
            .iter()
            .enumerate()
            .filter(|(i, line)| match self {
                Who::Admin => true,
                Who::Member { whole, .. } => visible.contains(i) || whole.contains(&line.server.as_str()),
                Who::EndUser { .. } => visible.contains(i),
            })
            .map(|(_, line)| (line.server.clone(), line.raw.clone()))
            .sorted()
    }
}

/// Every item of a paged list (500 per page).
async fn all_items(elsed: &Elsed, session: &Session, path: &str) -> Vec<Value> {
    let mut items = Vec::new();
    for page in 1.. {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = format!("{path}{separator}per_page=500&page={page}");
        let response = elsed.get(&url, Some(session)).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let body: Value = response.json().await.unwrap();
        let found = body["items"].as_array().unwrap().clone();
        let done = found.len() < 500;
        items.extend(found);
        if done {
            break;
        }
    }
    items
}

/// A CSV export's rows, by header name.
async fn csv_rows(elsed: &Elsed, session: &Session, path: &str) -> Vec<HashMap<String, String>> {
    let response = elsed.get(path, Some(session)).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    reader
        .records()
        .map(|record| {
            header
                .iter()
                .cloned()
                .zip(record.unwrap().iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// Collects and sorts: the multiset of an iterator, comparable whatever the order.
trait Sorted<T: Ord>: Iterator<Item = T> + Sized {
    fn sorted(self) -> Vec<T> {
        let mut items: Vec<T> = self.collect();
        items.sort();
        items
    }
}

impl<T: Ord, I: Iterator<Item = T>> Sorted<T> for I {}

/// The sorted `address` fields of a list of recipients.
fn addresses(recipients: &Value) -> Vec<String> {
    recipients
        .as_array()
        .unwrap()
        .iter()
        .map(|r| text(&r["address"]))
        .sorted()
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// A CSV cell as the formula guard may have written it (a leading `'`).
fn unguarded(cell: &str) -> String {
    cell.strip_prefix('\'').unwrap_or(cell).to_owned()
}

/// Checks every endpoint for one caller; `name` says who in failures.
async fn check_caller(elsed: &Elsed, session: &Session, who: &Who, truth: &Truth, name: &str) {
    // Messages: which lives, and which of their recipients.
    let mut expected: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for life in &truth.lives {
        if let Some(mut recipients) = who.recipients(life) {
            recipients.sort();
            let key = (
                life.server.clone(),
                life.queue_id.clone(),
                life.sender.clone().unwrap_or_default(),
            );
            expected.insert(key, recipients);
        }
    }
    let messages = all_items(elsed, session, "/messages?since=2024-03-14T00:00:00Z").await;
    let mut found: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for m in &messages {
        let recipients = addresses(&m["recipients"]);
        assert_eq!(m["recipient_count"], json!(recipients.len()), "{name}: {m}");
        found.insert(
            (text(&m["server"]), text(&m["queue_id"]), text(&m["sender"])),
            recipients,
        );
    }
    assert_eq!(found, expected, "{name}: /messages");

    let csv = csv_rows(elsed, session, "/messages?since=2024-03-14T00:00:00Z&format=csv").await;
    let mut from_csv: BTreeMap<(String, String, String), Vec<String>> = BTreeMap::new();
    for row in &csv {
        let mut recipients: Vec<String> = row["recipients"]
            .split("; ")
            .filter(|r| !r.is_empty())
            .map(|r| unguarded(r.split(" (").next().unwrap()))
            .collect();
        recipients.sort();
        let key = (
            row["server"].clone(),
            row["queue_id"].clone(),
            unguarded(&row["sender"]),
        );
        from_csv.insert(key, recipients);
    }
    assert_eq!(from_csv, expected, "{name}: /messages?format=csv");

    // Each message's detail: the hop's recipients, its lines, NDRs and greylisting (none here).
    for m in &messages {
        let id = text(&m["id"]);
        let detail: Value = elsed
            .get(&format!("/messages/{id}"), Some(session))
            .await
            .json()
            .await
            .unwrap();
        let life = truth
            .lives
            .iter()
            .find(|l| {
                l.server == text(&m["server"])
                    && l.queue_id == text(&m["queue_id"])
                    && l.sender.clone().unwrap_or_default() == text(&m["sender"])
            })
            .unwrap();
        let hop = detail["journey"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["id"] == json!(id))
            .unwrap_or_else(|| panic!("{name}: the hop of {id} in {detail}"));
        let recipients = addresses(&hop["recipients"]);
        let mut expected_recipients = who.recipients(life).unwrap();
        expected_recipients.sort();
        assert_eq!(recipients, expected_recipients, "{name}: recipients of {id}");
        let lines: BTreeSet<String> = detail["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["message_id"] == json!(id))
            .map(|l| text(&l["raw"]))
            .collect();
        let expected_lines: BTreeSet<String> = life.lines.iter().map(|&i| truth.lines[i].raw.clone()).collect();
        assert_eq!(lines, expected_lines, "{name}: lines of {id}");
        assert_eq!(detail["ndrs"], json!([]), "{name}");
        assert_eq!(detail["greylist"], json!([]), "{name}");
    }

    // Rejects.
    let expected: BTreeSet<(String, String)> = truth
        .rejects
        .iter()
        .filter(|r| who.sees_reject(r))
        .map(|r| (r.sender.clone(), r.recipient.clone()))
        .collect();
    let rejects = all_items(elsed, session, "/rejects?since=2024-03-14T00:00:00Z").await;
    let found: BTreeSet<(String, String)> = rejects
        .iter()
        .map(|r| (text(&r["sender"]), text(&r["recipient"])))
        .collect();
    assert_eq!(found, expected, "{name}: /rejects");

    // Raw lines: the log view, its CSV, live.
    let expected = who.lines(truth);
    let logs = all_items(elsed, session, "/logs?since=2024-03-14T00:00:00Z").await;
    let found = logs.iter().map(|l| (text(&l["server"]), text(&l["raw"]))).sorted();
    assert_eq!(found, expected, "{name}: /logs");
    let csv = csv_rows(elsed, session, "/logs?since=2024-03-14T00:00:00Z&format=csv").await;
    let found = csv.iter().map(|r| (r["server"].clone(), unguarded(&r["raw"]))).sorted();
    assert_eq!(found, expected, "{name}: /logs?format=csv");
    let live: Value = elsed.get("/live", Some(session)).await.json().await.unwrap();
    let found = live["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (text(&l["server"]), text(&l["raw"])))
        .sorted();
    if expected.len() <= 100 {
        assert_eq!(found, expected, "{name}: /live");
    } else {
        assert_eq!(found.len(), 100, "{name}: /live");
        assert!(found.iter().all(|line| expected.contains(line)), "{name}: /live");
    }

    // No NDR and no greylisting decision in this log: none to anyone.
    assert!(all_items(elsed, session, "/ndrs").await.is_empty(), "{name}: /ndrs");
    let decisions: Value = elsed
        .get("/greylist/decisions?since=2024-03-14T00:00:00Z", Some(session))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(decisions["items"], json!([]), "{name}: /greylist/decisions");
}

/// The strings at `field` of the items at `list` of what `path` answers (a JSON object).
async fn listed(elsed: &Elsed, session: &Session, path: &str, list: &str, field: &str) -> BTreeSet<String> {
    let body: Value = elsed.get(path, Some(session)).await.json().await.unwrap();
    body[list]
        .as_array()
        .unwrap_or_else(|| panic!("{path}: {body}"))
        .iter()
        .map(|item| text(&item[field]))
        .collect()
}

/// The senders the JSON report lists (its per-domain section), for a group member.
async fn report_senders(elsed: &Elsed, session: &Session) -> BTreeSet<String> {
    let path = "/reports?since=2024-03-14T00:00:00Z&until=2024-03-15T00:00:00Z&format=json";
    listed(elsed, session, path, "senders_by_count", "address").await
}

/// The senders the statistics list (top senders of the day), for a group member.
async fn stats_senders(elsed: &Elsed, session: &Session) -> BTreeSet<String> {
    let path = "/stats/top?kind=senders&limit=100&since=2024-03-14T00:00:00Z&until=2024-03-15T00:00:00Z";
    listed(elsed, session, path, "items", "key").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_sees_exactly_its_own_mail_lines_and_rejects() {
    let elsed = Elsed::start("tenants", "").await;
    let fixture =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail.log")).unwrap();
    let log = format!("{fixture}{TENANTS_LOG}");
    let path = scratch("tenants").join("mail.log");
    std::fs::write(&path, &log).unwrap();
    // The customers' domains before the import: the statistics count per group domain from the
    // hours refreshed after it is added (the import refreshes them).
    for (group, domain) in [("a", A), ("b", B)] {
        ok(elsed.cli(&["group", "add", group], ""));
        ok(elsed.cli(&["group", "add-domain", group, domain], ""));
    }
    elsed.import(&path);
    let truth = Truth::read(&log);
    // The scenario is what this test says it is.
    let forged = truth.lives.iter().find(|l| l.queue_id == "6B6B6B6B6B").unwrap();
    assert!(!forged.vouched && forged.sender.as_deref() == Some("boss@customer-a.example"));
    assert_eq!(truth.lives.iter().filter(|l| l.queue_id == "5A5A5A5A5A").count(), 2);

    // Two groups on the same two servers, a member each, and end users.
    for group in ["a", "b"] {
        ok(elsed.cli(&["group", "add-server", group, "mx1"], ""));
        ok(elsed.cli(&["group", "add-server", group, "out1"], ""));
        let login = format!("member-{group}");
        ok(elsed.cli(
            &["user", "add", &login, "--group", group, "--password-file", "-"],
            "a member's password\n",
        ));
    }
    for address in [
        "ann@customer-a.example",
        "bea@customer-b.example",
        "boss@customer-a.example",
    ] {
        let login = address.split('@').next().unwrap();
        ok(elsed.cli(
            &[
                "user",
                "add",
                login,
                "--role",
                "enduser",
                "--address",
                address,
                "--password-file",
                "-",
            ],
            "an end user's password\n",
        ));
    }
    let admin = elsed.admin().await;
    let callers = [
        ("admin", admin.clone(), Who::Admin),
        (
            "member-a",
            elsed.session("member-a", "a member's password").await,
            Who::Member {
                domain: A,
                whole: vec![],
            },
        ),
        (
            "member-b",
            elsed.session("member-b", "a member's password").await,
            Who::Member {
                domain: B,
                whole: vec![],
            },
        ),
        (
            "ann",
            elsed.session("ann", "an end user's password").await,
            Who::EndUser {
                address: "ann@customer-a.example",
            },
        ),
        (
            "bea",
            elsed.session("bea", "an end user's password").await,
            Who::EndUser {
                address: "bea@customer-b.example",
            },
        ),
        (
            "boss",
            elsed.session("boss", "an end user's password").await,
            Who::EndUser {
                address: "boss@customer-a.example",
            },
        ),
    ];
    for (name, session, who) in &callers {
        check_caller(&elsed, session, who, &truth, name).await;
    }
    // The forged sender is nobody's mail but its recipient's: the report and the statistics of
    // customer A do not count it, customer B's do not name customer A's outbound sender.
    let (member_a, member_b) = (&callers[1].1, &callers[2].1);
    let senders_a = report_senders(&elsed, member_a).await;
    assert!(
        senders_a.contains("ann@customer-a.example") && !senders_a.contains("boss@customer-a.example"),
        "{senders_a:?}"
    );
    let senders_b = report_senders(&elsed, member_b).await;
    assert!(
        senders_b.contains("boss@customer-a.example") && !senders_b.contains("ann@customer-a.example"),
        "{senders_b:?}"
    );
    for (name, session, who) in &callers[1..3] {
        let expected: BTreeSet<String> = truth
            .lives
            .iter()
            .filter(|l| who.recipients(l).is_some())
            .filter_map(|l| l.sender.as_deref().map(str::to_lowercase))
            .collect();
        assert_eq!(stats_senders(&elsed, session).await, expected, "{name}: /stats/top");
    }

    // An administrator gives customer A the outgoing server whole (audited): its members now see
    // every line of it, those of no message and customer B's too; a server outside the group
    // cannot be owned.
    let groups: Value = elsed.get("/admin/groups", Some(&admin)).await.json().await.unwrap();
    let group_a = groups
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "a")
        .unwrap()
        .clone();
    let servers: Value = elsed.get("/servers", Some(&admin)).await.json().await.unwrap();
    let server_id = |name: &str| {
        servers.as_array().unwrap().iter().find(|s| s["name"] == name).unwrap()["id"]
            .as_i64()
            .unwrap()
    };
    let path = format!("/admin/groups/{}", group_a["id"]);
    let changed = elsed
        .send(
            Method::PATCH,
            &path,
            &admin,
            json!({ "whole_server_ids": [server_id("out1")] }),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["whole_server_ids"], json!([server_id("out1")]));
    assert_eq!(changed["server_ids"], group_a["server_ids"]);
    let audit: Value = elsed
        .get("/admin/audit?action=group.update", Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        audit["items"][0]["details"]["whole_server_ids"],
        json!([server_id("out1")]),
        "{audit}"
    );
    ok(elsed.cli(&["group", "add", "c"], ""));
    let group_c: Value = elsed.get("/admin/groups", Some(&admin)).await.json().await.unwrap();
    let group_c = group_c.as_array().unwrap().iter().find(|g| g["name"] == "c").unwrap()["id"].clone();
    error(
        elsed
            .send(
                Method::PATCH,
                &format!("/admin/groups/{group_c}"),
                &admin,
                json!({ "whole_server_ids": [server_id("mx1")] }),
            )
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let member_a = elsed.session("member-a", "a member's password").await;
    let owner = Who::Member {
        domain: A,
        whole: vec!["out1"],
    };
    let expected = owner.lines(&truth);
    assert!(expected.contains(&(
        "out1".into(),
        "daemon started -- version 3.7.11, configuration /etc/postfix".into()
    )));
    let logs = all_items(&elsed, &member_a, "/logs?since=2024-03-14T00:00:00Z").await;
    let found = logs.iter().map(|l| (text(&l["server"]), text(&l["raw"]))).sorted();
    assert_eq!(found, expected, "member-a owning out1: /logs");
    // The command line does the same, and says so in its listing; without --whole it takes it back.
    ok(elsed.cli(&["group", "add-server", "b", "mx1", "--whole"], ""));
    let listing = ok(elsed.cli(&["group", "list"], ""));
    assert!(listing.contains("mx1(whole)"), "{listing}");
    ok(elsed.cli(&["group", "add-server", "b", "mx1"], ""));
    let listing = ok(elsed.cli(&["group", "list"], ""));
    assert!(
        !listing.lines().any(|l| l.contains(" b ") && l.contains("mx1(whole)")),
        "{listing}"
    );
}
