//! The replicator keeps fleets apart, keeps each fleet's lines in recorded order and the stream
//! in time order, and keeps queue ids valid and hops linked, on the committed fixture.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::OnceLock;

use omelse::parse::{parse_line, Clock, EventKind};

use super::{Fixture, Replication, Stream, StreamLine};

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(Fixture::committed)
}

fn stream(fleets: usize, lines: usize) -> Vec<StreamLine> {
    let start = "2026-01-01T00:00:00Z".parse().unwrap();
    Stream::new(fixture(), Replication { fleets, lines, start }).collect()
}

/// What a line names, as omelse reads it: host, queue id, the queue id a delivery handed the mail
/// to, Message-ID, and the peer addresses.
#[derive(Default)]
struct Names {
    host: String,
    queue_id: Option<String>,
    queued_as: Option<String>,
    message_id: Option<String>,
    ips: Vec<String>,
}

fn names(text: &str) -> Names {
    let mut clock = Clock::new(jiff::tz::TimeZone::UTC, omelse::parse::Timestamp::now());
    let parsed = parse_line(text, &mut clock).unwrap_or_else(|| panic!("omelse cannot read {text}"));
    let mut names = Names {
        host: parsed.line.host.to_owned(),
        queue_id: parsed.event.queue_id.map(str::to_owned),
        ..Names::default()
    };
    match parsed.event.kind {
        EventKind::Delivery(d) => {
            names.queued_as = d.queued_as.map(str::to_owned);
            names.ips.extend(d.relay_peer.map(|p| p.ip.to_owned()));
        }
        EventKind::MessageId { message_id } => names.message_id = Some(message_id.to_owned()),
        EventKind::Client { client, .. } | EventKind::Connect { client } => names.ips.push(client.ip.to_owned()),
        _ => {}
    }
    names
}

#[test]
fn the_fixture_is_a_dense_pair_log() {
    let fixture = fixture();
    let text: Vec<String> = stream(1, fixture.len()).into_iter().map(|l| l.text).collect();
    let count = |needle: &str| text.iter().filter(|l| l.contains(needle)).count();
    assert!(fixture.len() > 40_000, "{} lines", fixture.len());
    assert!(fixture.messages() > 4_000, "{} messages", fixture.messages());
    for needle in [
        "status=sent",
        "status=deferred",
        "status=bounced",
        "status=expired",
        "sender non-delivery notification",
        "orig_to=",
        "NOQUEUE: reject",
        "relay=out1-f00.example-f00.test[10.0.10.2]:25",
        "relay=in1-f00.example-f00.test[10.0.10.1]:25",
    ] {
        assert!(count(needle) > 0, "no {needle:?} in the fixture");
    }
    // Both queue id forms: short on in1, long on out1.
    let ids: Vec<String> = text.iter().take(5_000).filter_map(|l| names(l).queue_id).collect();
    assert!(ids.iter().any(|id| !id.contains('z')) && ids.iter().any(|id| id.contains('z')));
}

#[test]
fn fleets_are_disjoint() {
    let lines = stream(4, 40_000);
    let mut per_fleet: Vec<[HashSet<String>; 4]> = (0..4).map(|_| Default::default()).collect();
    for line in &lines {
        let n = names(&line.text);
        let [hosts, queue_ids, message_ids, ips] = &mut per_fleet[line.fleet];
        hosts.insert(n.host);
        queue_ids.extend(n.queue_id);
        message_ids.extend(n.message_id);
        ips.extend(n.ips.into_iter().filter(|ip| !ip.starts_with("192.0.2.")));
    }
    for (fleet, sets) in per_fleet.iter().enumerate() {
        let hosts: BTreeSet<&str> = sets[0].iter().map(String::as_str).collect();
        let tag = format!("f{fleet:02}");
        assert_eq!(hosts, BTreeSet::from([&*format!("in1-{tag}"), &*format!("out1-{tag}")]));
        assert!(
            sets[1].len() > 500 && sets[2].len() > 500,
            "fleet {fleet}: few messages"
        );
    }
    for a in 0..4 {
        for b in a + 1..4 {
            for (kind, (x, y)) in per_fleet[a].iter().zip(&per_fleet[b]).enumerate() {
                let shared: Vec<_> = x.intersection(y).collect();
                assert!(
                    shared.is_empty(),
                    "fleets {a} and {b} share names of kind {kind}: {shared:?}"
                );
            }
        }
    }
}

#[test]
fn each_fleet_replays_the_recording_in_order_and_the_stream_is_in_time_order() {
    let fixture = fixture();
    // Two fleets, long enough for each to start a second cycle.
    let total = 2 * fixture.len() + 5_000;
    let lines = stream(2, total);
    assert_eq!(lines.len(), total);
    let mut expected = [(0, 0); 2];
    for line in &lines {
        assert_eq!((line.cycle, line.index), expected[line.fleet], "fleet {}", line.fleet);
        expected[line.fleet] = if line.index + 1 == fixture.len() {
            (line.cycle + 1, 0)
        } else {
            (line.cycle, line.index + 1)
        };
    }
    assert!(expected.iter().all(|&(cycle, _)| cycle == 1));
    for pair in lines.windows(2) {
        assert!(pair[0].micros <= pair[1].micros);
        // RFC 3339 times of one zone compare as text.
        assert!(
            pair[0].text[..25] <= pair[1].text[..25],
            "{}\n{}",
            pair[0].text,
            pair[1].text
        );
    }
    // The fleets interleave line by line, not in blocks of a second.
    let switches = lines.windows(2).filter(|p| p[0].fleet != p[1].fleet).count();
    assert!(switches > lines.len() / 4, "{switches} switches between fleets");
}

#[test]
fn queue_ids_stay_valid_unique_per_instance_and_hops_link() {
    let fixture = fixture();
    // One fleet into its second cycle (fleets_are_disjoint compares fleets).
    let lines = stream(1, fixture.len() + fixture.len() / 2);
    // Every queue id of the recording comes out as a queue id omelse reads, and each instance
    // (fleet, cycle) has ids of its own.
    let mut owner: HashMap<String, (usize, usize)> = HashMap::new();
    let mut handed: Vec<(usize, usize, String)> = Vec::new();
    let mut first_lines: HashMap<(usize, usize), usize> = HashMap::new();
    for line in &lines {
        let n = names(&line.text);
        let instance = (line.fleet, line.cycle);
        if line.starts_message {
            *first_lines.entry(instance).or_default() += 1;
        }
        if let Some(id) = n.queue_id {
            let seen = owner.insert(id.clone(), instance);
            assert!(seen.is_none_or(|s| s == instance), "{id} in {seen:?} and {instance:?}");
        }
        if let (Some(to), true) = (n.queued_as, line.text.contains("relay=out1-")) {
            handed.push((line.fleet, line.cycle, to));
        }
    }
    // The number of messages is the number of queue ids: one first line each.
    assert_eq!(first_lines.values().sum::<usize>(), owner.len());
    assert_eq!(owner.len(), fixture.messages() + first_lines[&(0, 1)]);
    // Every relay from in1 to out1 names a queue id that out1 of the same fleet and cycle logs.
    assert!(handed.len() > 100);
    for (fleet, cycle, to) in handed {
        if let Some(&found) = owner.get(&to) {
            assert_eq!(found, (fleet, cycle), "{to}");
        } else {
            // Only at the very end of the stream may the next hop's lines not have come yet.
            assert_eq!(cycle, 1, "{to} of fleet {fleet} never logged by its out1");
        }
    }
}

#[test]
fn the_stream_counts_its_messages() {
    let mut stream = Stream::new(
        fixture(),
        Replication {
            fleets: 3,
            lines: 10_000,
            start: jiff::Timestamp::now(),
        },
    );
    let mut ids = HashSet::new();
    for line in stream.by_ref() {
        let n = names(&line.text);
        ids.extend(n.queue_id.map(|id| (n.host, id)));
    }
    assert_eq!(stream.messages(), ids.len());
}

/// With microseconds each line carries its exact time (what omelse reads is the line's `micros`),
/// and otherwise reads as the same line with whole seconds.
#[test]
fn microseconds_give_each_line_its_exact_time() {
    let start: jiff::Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let exact: Vec<StreamLine> = Stream::new(
        fixture(),
        Replication {
            fleets: 3,
            lines: 3_000,
            start,
        },
    )
    .with_microseconds()
    .collect();
    let whole = stream(3, 3_000);
    let mut clock = Clock::new(jiff::tz::TimeZone::UTC, omelse::parse::Timestamp::now());
    let mut with_fraction = 0;
    for (exact, whole) in exact.iter().zip(&whole) {
        let parsed = parse_line(&exact.text, &mut clock).unwrap_or_else(|| panic!("unreadable: {}", exact.text));
        assert_eq!(
            parsed.line.time.0,
            start.as_microsecond() + exact.micros,
            "{}",
            exact.text
        );
        with_fraction += usize::from(exact.micros % 1_000_000 != 0);
        let rest = |text: &str| text.split_once(' ').map(|(_, rest)| rest.to_owned());
        assert_eq!(rest(&exact.text), rest(&whole.text));
        assert_eq!(&exact.text[..19], &whole.text[..19]);
    }
    assert!(
        with_fraction > 2_000,
        "most lines fall inside a second: {with_fraction}"
    );
}
