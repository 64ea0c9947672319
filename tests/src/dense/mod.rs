//! The dense benchmark input: a log recorded from the project's own Postfix pair under heavy
//! load ([`record`], kept as `tests/fixtures/dense/pair.log.gz`), replicated as independent
//! fleets interleaved in time ([`Stream`]): a live stream of any size with every message's lines,
//! recipients, deliveries and hops, where the real MX log of the corpora is mostly connection noise.
//!
//! Each fleet is the recorded pair under its own names: host `in1` becomes `in1-f07` (also as the
//! first label of `in1.example.test`), the organisation's domain `example.test` becomes
//! `example-f07.test`, its addresses `127.0.10.x` (servers) and `127.0.30.x` (workstations) become
//! `10.7.10.x` and `10.7.30.x`, its Internet clients `127.0.20.x` become `198.18.7.x`; the
//! Internet's MXes (`127.0.40.x`, `192.0.2.x` here) and domains are shared, as on the real
//! Internet. When a fleet has replayed the whole recording it replays it again (a new *cycle*,
//! one second after the last line), so every (fleet, cycle) is an *instance* with queue ids and
//! Message-IDs of its own: a queue id gets the instance number appended in its own alphabet
//! (4 hex digits to a short id, 3 base-51 characters to the inode part of a long one: both stay
//! valid Postfix queue ids), a Message-ID gets `f07c0.` before its local part. Rewritten the same
//! way on both hosts, the relay lines (`queued as …`, `relay=out1.example.test[…]`) still link
//! the hops within each fleet.
//!
//! Fleets start a fraction of a second apart (spread over ten seconds) and their lines are merged
//! by time; within one second of the recording the lines are spread evenly, so the fleets
//! interleave line by line rather than in one-second blocks.

pub mod record;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Read;
use std::path::Path;

use omelse::parse::Clock;

/// The hosts of the recorded pair: renamed per fleet.
const PAIR_HOSTS: [&str; 2] = ["in1", "out1"];
/// The organisation's domain in the recording: renamed per fleet.
const ORG_DOMAIN: &str = "example.test";
/// Instances (fleet × cycle) a stream may have: the queue id suffixes' range.
const MAX_INSTANCES: usize = 51 * 51 * 51;
/// The most fleets: the second octet of their addresses.
pub const MAX_FLEETS: usize = 256;
const MICROS: i64 = 1_000_000;
/// Fleets start spread over this much time.
const STAGGER_MICROS: i64 = 10 * MICROS;
/// Characters of a long queue id's inode part (base 51: digits and consonants, no `z`).
const BASE51: &[u8] = b"0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxy";

/// One piece of a fixture line.
#[derive(Debug, Clone)]
enum Part {
    Text(Box<str>),
    /// The syslog host field: an index into [`PAIR_HOSTS`], or another host kept as it is.
    Host(usize),
    QueueId(u32),
    /// An address of the pair's networks: (third octet, fourth octet) of `127.0.x.y`.
    Ip(u8, u8),
    /// A name in the organisation's domain: the labels before it (`in1.` or `fwd.`), the first one
    /// renamed when it is a host of the pair.
    OrgName(Box<str>),
    /// The start of a Message-ID's local part.
    MessageId,
}

#[derive(Debug, Clone)]
struct Line {
    /// Microseconds after the recording's first line: its second, plus an even spread of the
    /// lines logged in that second.
    offset: i64,
    parts: Vec<Part>,
    /// The line names a queue id for the first time: one message.
    starts_message: bool,
}

/// The recorded log, parsed once into templates.
#[derive(Debug, Clone)]
pub struct Fixture {
    lines: Vec<Line>,
    queue_ids: Vec<Box<str>>,
    /// Microseconds from the first line to one second after the last.
    cycle: i64,
}

impl Fixture {
    /// The committed fixture, `tests/fixtures/dense/pair.log.gz`.
    pub fn committed() -> Fixture {
        Fixture::load(&record::fixture_path())
    }

    /// Reads a recording (gzip), as [`record::record`] writes it.
    pub fn load(path: &Path) -> Fixture {
        let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut text = String::new();
        flate2::read::MultiGzDecoder::new(file)
            .read_to_string(&mut text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Fixture::parse(&text)
    }

    /// Parses `Mmm dd HH:MM:SS host program[pid]: message` lines (Postfix's `maillog_file`).
    pub fn parse(text: &str) -> Fixture {
        let mut clock = Clock::new(jiff::tz::TimeZone::UTC, omelse::parse::Timestamp::now());
        let raw: Vec<(i64, &str, &str)> = text.lines().filter_map(|l| split_line(l, &mut clock)).collect();
        assert!(!raw.is_empty(), "the dense fixture has no log lines");
        // A queue id is what a line starts with (`QID: `) on one of the pair's hosts.
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let mut queue_ids = Vec::new();
        for (_, _, message) in &raw {
            if let Some(id) = leading_queue_id(message) {
                ids.entry(id).or_insert_with(|| {
                    queue_ids.push(Box::from(id));
                    (queue_ids.len() - 1) as u32
                });
            }
        }
        // Seconds never go back (two processes may log across a second boundary out of order),
        // and the lines of one second are spread evenly over it.
        let first = raw[0].0;
        let mut seconds = Vec::with_capacity(raw.len());
        let mut last = 0;
        for (time, _, _) in &raw {
            last = (time - first).max(last);
            seconds.push(last);
        }
        let mut seen = HashSet::new();
        let mut lines = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            let n = seconds[i..].iter().take_while(|&&s| s == seconds[i]).count();
            for j in 0..n {
                let (_, host, message) = raw[i + j];
                let starts_message = leading_queue_id(message).is_some_and(|id| seen.insert(id));
                lines.push(Line {
                    offset: seconds[i] * MICROS + j as i64 * MICROS / n as i64,
                    parts: template(host, message, &ids),
                    starts_message,
                });
            }
            i += n;
        }
        Fixture {
            lines,
            queue_ids,
            cycle: (last + 1) * MICROS,
        }
    }

    /// Lines of the recording.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Messages of the recording (distinct queue ids).
    pub fn messages(&self) -> usize {
        self.queue_ids.len()
    }
}

/// Time (seconds), host and `program[pid]: message` of a syslog line, by omelse's own parser (the
/// recording's year-less local times read as UTC: only differences count).
fn split_line<'a>(line: &'a str, clock: &mut Clock) -> Option<(i64, &'a str, &'a str)> {
    let parsed = omelse::parse::split_line(line, clock)?;
    let rest = parsed.program.as_ptr() as usize - line.as_ptr() as usize;
    Some((parsed.time.unix_seconds(), parsed.host, &line[rest..]))
}

/// The queue id a `program[pid]: QID: …` line starts with.
fn leading_queue_id(rest: &str) -> Option<&str> {
    let (_, message) = rest.split_once(": ")?;
    omelse::parse::fields::split_queue_id(message).0
}

/// Splits a line into literal text and the pieces each fleet renames.
fn template(host: &str, message: &str, ids: &HashMap<&str, u32>) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut text = String::new();
    let flush = |text: &mut String, parts: &mut Vec<Part>, part: Option<Part>| {
        if !text.is_empty() {
            parts.push(Part::Text(std::mem::take(text).into()));
        }
        parts.extend(part);
    };
    match PAIR_HOSTS.iter().position(|h| *h == host) {
        Some(index) => flush(&mut text, &mut parts, Some(Part::Host(index))),
        None => text.push_str(host),
    }
    text.push(' ');
    let bytes = message.as_bytes();
    let is_token = |b: &u8| b.is_ascii_alphanumeric() || b"._-".contains(b);
    let mut i = 0;
    while i < bytes.len() {
        // Punctuation and spaces (and any non-ASCII text) up to the next token, kept as they are.
        let end = i + bytes[i..].iter().take_while(|b| !is_token(b)).count();
        text.push_str(&message[i..end]);
        if end > i && message[..end].ends_with("message-id=<") {
            flush(&mut text, &mut parts, Some(Part::MessageId));
        }
        i = end;
        let end = i + bytes[i..].iter().take_while(|b| is_token(b)).count();
        let token = &message[i..end];
        i = end;
        if let Some(&id) = ids.get(token) {
            flush(&mut text, &mut parts, Some(Part::QueueId(id)));
        } else if let Some(ip) = pair_address(token) {
            flush(&mut text, &mut parts, Some(ip));
        } else if let Some(labels) = org_labels(token) {
            flush(&mut text, &mut parts, Some(Part::OrgName(labels.into())));
        } else {
            text.push_str(token);
        }
    }
    flush(&mut text, &mut parts, None);
    parts
}

/// `127.0.x.y` of the pair's networks (servers, Internet clients, workstations, remote MXes).
fn pair_address(token: &str) -> Option<Part> {
    let rest = token.strip_prefix("127.0.")?;
    let (third, fourth) = rest.split_once('.')?;
    let (third, fourth): (u8, u8) = (third.parse().ok()?, fourth.parse().ok()?);
    [10, 20, 30, 40].contains(&third).then_some(Part::Ip(third, fourth))
}

/// The labels before the organisation's domain (`in1.` of `in1.example.test`, empty for the
/// domain itself).
fn org_labels(token: &str) -> Option<&str> {
    let labels = token.strip_suffix(ORG_DOMAIN)?;
    (labels.is_empty() || labels.ends_with('.')).then_some(labels)
}

/// How many fleets, how many lines, and when the stream starts.
#[derive(Debug, Clone, Copy)]
pub struct Replication {
    pub fleets: usize,
    pub lines: usize,
    pub start: jiff::Timestamp,
}

impl Replication {
    /// The stream that ends now (its last line's second is the current one).
    pub fn ending_now(fixture: &Fixture, fleets: usize, lines: usize) -> Replication {
        let zero = Replication {
            fleets,
            lines,
            start: jiff::Timestamp::UNIX_EPOCH,
        };
        let last = Stream::new(fixture, zero).map(|l| l.micros).last().unwrap_or(0);
        Replication {
            start: jiff::Timestamp::now() - jiff::SignedDuration::from_micros(last),
            ..zero
        }
    }
}

/// One line of the stream: whose it is, and its text (`RFC3339 host program[pid]: message`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamLine {
    pub fleet: usize,
    pub cycle: usize,
    /// Its line in the recording.
    pub index: usize,
    /// Microseconds after the stream's start.
    pub micros: i64,
    pub text: String,
    /// The line names a queue id of its instance for the first time: one message.
    pub starts_message: bool,
}

/// The fleets' lines merged in time order, [`Replication::lines`] of them.
pub struct Stream<'a> {
    fixture: &'a Fixture,
    replication: Replication,
    /// The next line of each fleet: (time, fleet), earliest first.
    next: BinaryHeap<Reverse<(i64, usize)>>,
    /// Where each fleet is: (cycle, line).
    cursors: Vec<(usize, usize)>,
    emitted: usize,
    messages: usize,
    tags: Vec<String>,
    /// The last second written and its RFC 3339 text (without offset): most lines share their
    /// second.
    stamp: (i64, String),
    /// Times with microseconds, see [`Stream::with_microseconds`].
    microseconds: bool,
}

impl<'a> Stream<'a> {
    pub fn new(fixture: &'a Fixture, replication: Replication) -> Stream<'a> {
        let fleets = replication.fleets;
        assert!(
            (1..=MAX_FLEETS).contains(&fleets),
            "1 to {MAX_FLEETS} fleets, not {fleets}"
        );
        let mut stream = Stream {
            fixture,
            replication,
            next: BinaryHeap::new(),
            cursors: vec![(0, 0); fleets],
            emitted: 0,
            messages: 0,
            tags: (0..fleets)
                .map(|f| {
                    if fleets <= 100 {
                        format!("f{f:02}")
                    } else {
                        format!("f{f:03}")
                    }
                })
                .collect(),
            stamp: (i64::MIN, String::new()),
            microseconds: false,
        };
        for fleet in 0..fleets {
            let time = stream.time(fleet, 0, 0);
            stream.next.push(Reverse((time, fleet)));
        }
        stream
    }

    /// Times with microseconds (`…T10:00:00.250000+00:00`), as the shipped Postfix-host stanzas
    /// forward them (RFC 3339 with the fraction, rsyslog's `date-rfc3339`), instead of whole
    /// seconds (as a host's syslog writes its file): a line's time then names it.
    pub fn with_microseconds(mut self) -> Stream<'a> {
        self.microseconds = true;
        self
    }

    /// Messages in the lines given so far: what the database should count once they are stored.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// The fleet tag of host names and domains (`f07`).
    pub fn tag(&self, fleet: usize) -> &str {
        &self.tags[fleet]
    }

    fn time(&self, fleet: usize, cycle: usize, index: usize) -> i64 {
        let stagger = STAGGER_MICROS * fleet as i64 / self.replication.fleets as i64;
        stagger + cycle as i64 * self.fixture.cycle + self.fixture.lines[index].offset
    }

    fn render(&mut self, fleet: usize, cycle: usize, index: usize, micros: i64) -> String {
        let instance = cycle * self.replication.fleets + fleet;
        assert!(instance < MAX_INSTANCES, "more than {MAX_INSTANCES} fleet cycles");
        let time = self.replication.start + jiff::SignedDuration::from_micros(micros);
        if time.as_second() != self.stamp.0 {
            self.stamp = (time.as_second(), time.strftime("%Y-%m-%dT%H:%M:%S").to_string());
        }
        let tag = &self.tags[fleet];
        let mut out = String::with_capacity(256);
        out.push_str(&self.stamp.1);
        if self.microseconds {
            let _ = write!(out, ".{:06}", time.subsec_microsecond());
        }
        out.push_str("+00:00 ");
        for part in &self.fixture.lines[index].parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Host(host) => {
                    let _ = write!(out, "{}-{tag}", PAIR_HOSTS[*host]);
                }
                Part::QueueId(id) => queue_id(&mut out, &self.fixture.queue_ids[*id as usize], instance),
                Part::Ip(third, fourth) => {
                    let _ = match third {
                        20 => write!(out, "198.18.{fleet}.{fourth}"),
                        40 => write!(out, "192.0.2.{fourth}"),
                        _ => write!(out, "10.{fleet}.{third}.{fourth}"),
                    };
                }
                Part::OrgName(labels) => {
                    let (first, rest) = labels.split_once('.').unwrap_or(("", labels));
                    if PAIR_HOSTS.contains(&first) {
                        let _ = write!(out, "{first}-{tag}.{rest}");
                    } else {
                        out.push_str(labels);
                    }
                    let _ = write!(out, "example-{tag}.test");
                }
                Part::MessageId => {
                    let _ = write!(out, "{tag}c{cycle}.");
                }
            }
        }
        out
    }
}

/// A queue id of `instance`: a short one with 4 hex digits appended, a long one with 3 base-51
/// characters appended to its inode part. Fixed widths keep the ids of all instances distinct.
fn queue_id(out: &mut String, id: &str, instance: usize) {
    out.push_str(id);
    if id.contains('z') {
        for place in [51 * 51, 51, 1] {
            out.push(BASE51[instance / place % 51] as char);
        }
    } else {
        let _ = write!(out, "{instance:04X}");
    }
}

impl Iterator for Stream<'_> {
    type Item = StreamLine;

    fn next(&mut self) -> Option<StreamLine> {
        if self.emitted >= self.replication.lines {
            return None;
        }
        let Reverse((micros, fleet)) = self.next.pop()?;
        let (cycle, index) = self.cursors[fleet];
        let text = self.render(fleet, cycle, index, micros);
        let starts_message = self.fixture.lines[index].starts_message;
        self.messages += usize::from(starts_message);
        self.emitted += 1;
        let following = if index + 1 < self.fixture.lines.len() {
            (cycle, index + 1)
        } else {
            (cycle + 1, 0)
        };
        self.cursors[fleet] = following;
        let time = self.time(fleet, following.0, following.1);
        self.next.push(Reverse((time, fleet)));
        Some(StreamLine {
            fleet,
            cycle,
            index,
            micros,
            text,
            starts_message,
        })
    }
}

#[cfg(test)]
mod tests;
