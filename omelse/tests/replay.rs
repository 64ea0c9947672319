//! A log read again after a restart (imported twice, or imported after the live stream carried
//! it) changes no row: the correlator restored from the database meets lines it has already
//! seen, and must neither take them for new lives (a message on hold got a second row each time)
//! nor apply them twice. Checked over every log of the corpora and a message held with
//! `postsuper -h`, with the database simulated the way the store writes (see
//! [`common::Stored`]); `tests/tests/import_idempotence.rs` checks the same through `elsed
//! import` and PostgreSQL.

mod common;

use common::Stored;
use else_tests::corpora;
use jiff::tz::TimeZone;
use omelse::correlate::Correlator;
use omelse::ingest::Pipeline;
use omelse::parse::{Clock, Timestamp};
use omelse::store::Batch;

/// Lines per batch: small, so that batch boundaries fall inside the messages' stories (the live
/// path: rsyslog's batches).
const BATCH_LINES: usize = 7;
/// Lines per batch of `elsed import`.
const IMPORT_LINES: usize = 20_000;

/// The lines through a pipeline built on `correlator`, a batch every [`BATCH_LINES`] lines.
fn read(lines: &[&str], correlator: Correlator) -> Batch {
    read_in(lines, correlator, BATCH_LINES)
}

/// The lines through a pipeline built on `correlator`, a batch every `batch_lines` lines.
fn read_in(lines: &[&str], correlator: Correlator, batch_lines: usize) -> Batch {
    // RFC 3164 logs carry no year; the end of 2021 puts every corpus log in one year.
    let clock = Clock::new(TimeZone::UTC, Timestamp::from_unix_seconds(1_640_995_200));
    let mut pipeline = Pipeline::new(clock, correlator);
    let mut batch = Batch::default();
    for chunk in lines.chunks(batch_lines) {
        for line in chunk {
            pipeline.push_line(line);
        }
        batch.append(pipeline.take_batch());
    }
    batch
}

/// Reads `text` once, then twice more, each time with a correlator restored from what the first
/// readings stored; returns what differs from the first reading's rows.
fn replays_differ(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut stored = Stored::default();
    stored.write(&read(&lines, Correlator::new()));
    let first = stored.clone();
    let mut differences = Vec::new();
    for reading in 2..=3 {
        let mut correlator = Correlator::new();
        correlator.restore(stored.open_state());
        stored.write(&read(&lines, correlator));
        differences.extend(
            first
                .differences(&stored)
                .into_iter()
                .map(|d| format!("reading {reading}: {d}")),
        );
    }
    differences
}

/// A message put on hold with `postsuper -h` while its delivery was deferred, another deferred
/// one, and a smtpd session still open when the log ends: all three are restored open.
const HELD: &str = "\
2024-03-14T10:00:00.100000+00:00 mx1 postfix/smtpd[100]: connect from client.example[192.0.2.5]
2024-03-14T10:00:01.000000+00:00 mx1 postfix/smtpd[100]: 4ABC123DEF: client=client.example[192.0.2.5]
2024-03-14T10:00:01.100000+00:00 mx1 postfix/cleanup[101]: 4ABC123DEF: message-id=<held@client.example>
2024-03-14T10:00:01.200000+00:00 mx1 postfix/qmgr[102]: 4ABC123DEF: from=<a@client.example>, size=300, nrcpt=1 (queue active)
2024-03-14T10:00:01.300000+00:00 mx1 postfix/smtpd[100]: disconnect from client.example[192.0.2.5] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
2024-03-14T10:00:02.000000+00:00 mx1 postfix/smtp[103]: 4ABC123DEF: to=<c@remote.example>, relay=none, delay=1, delays=0.1/0/1/0, dsn=4.4.1, status=deferred (connect to remote.example[192.0.2.9]:25: Connection refused)
2024-03-14T10:00:05.000000+00:00 mx1 postfix/postsuper[104]: 4ABC123DEF: placed on hold
2024-03-14T10:00:05.000000+00:00 mx1 postfix/postsuper[104]: Placed on hold: 1 message
2024-03-14T10:00:06.000000+00:00 mx1 postfix/smtpd[100]: connect from client.example[192.0.2.5]
2024-03-14T10:00:06.500000+00:00 mx1 postfix/smtpd[100]: 5ABC123DEF: client=client.example[192.0.2.5]
2024-03-14T10:00:06.600000+00:00 mx1 postfix/cleanup[101]: 5ABC123DEF: message-id=<deferred@client.example>
2024-03-14T10:00:06.700000+00:00 mx1 postfix/qmgr[102]: 5ABC123DEF: from=<a@client.example>, size=300, nrcpt=1 (queue active)
2024-03-14T10:00:06.800000+00:00 mx1 postfix/smtpd[100]: disconnect from client.example[192.0.2.5] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
2024-03-14T10:00:07.000000+00:00 mx1 postfix/smtp[103]: 5ABC123DEF: to=<c@remote.example>, relay=none, delay=1, delays=0.1/0/1/0, dsn=4.4.1, status=deferred (connect to remote.example[192.0.2.9]:25: Connection refused)
2024-03-14T10:00:08.000000+00:00 mx1 postfix/smtpd[100]: connect from client.example[192.0.2.5]
2024-03-14T10:00:08.100000+00:00 mx1 postfix/smtpd[100]: 6ABC123DEF: client=client.example[192.0.2.5]
";

#[test]
fn a_held_message_read_again_keeps_one_row() {
    let differences = replays_differ(HELD);
    assert!(differences.is_empty(), "{differences:#?}");
    let mut stored = Stored::default();
    stored.write(&read(&HELD.lines().collect::<Vec<_>>(), Correlator::new()));
    let open = stored.open_state();
    let states: Vec<&str> = open.messages.iter().map(|m| m.state).collect();
    assert_eq!(states, ["held", "deferred", "received"], "the replays restored these");
    assert_eq!(open.sessions.len(), 1, "and the session the log ends in");
}

/// What differs between the live path and an import of `text`, each alone, and when each reads
/// the log again after the other (a backfill of today's log, the live feed of an imported one).
fn paths_differ(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let once = |batch_lines| {
        let mut stored = Stored::default();
        stored.write(&read_in(&lines, Correlator::new(), batch_lines));
        stored
    };
    let (live, imported) = (once(BATCH_LINES), once(IMPORT_LINES));
    let mut differences: Vec<String> = live
        .differences(&imported)
        .into_iter()
        .map(|d| format!("live / import: {d}"))
        .collect();
    for (name, first, then) in [
        ("import after live", &live, IMPORT_LINES),
        ("live after import", &imported, BATCH_LINES),
    ] {
        let mut stored = first.clone();
        let mut correlator = Correlator::new();
        correlator.restore(stored.open_state());
        stored.write(&read_in(&lines, correlator, then));
        differences.extend(first.differences(&stored).into_iter().map(|d| format!("{name}: {d}")));
    }
    differences
}

/// Every log of the corpora.
fn corpus_logs() -> Vec<(String, String)> {
    let dir = corpora::dir_or_skip().expect("the corpora");
    let mut logs: Vec<(String, String)> = Vec::new();
    for sub in ["lightmeter-ControlCenter/individual_files", "pmg-log-tracker"] {
        let mut paths: Vec<_> = std::fs::read_dir(dir.join(sub))
            .unwrap_or_else(|e| panic!("{sub}: {e}"))
            .map(|entry| entry.unwrap().path())
            .filter(|p| {
                let name = p.file_name().unwrap().to_string_lossy();
                name.ends_with(".log") || name.starts_with("test_input_")
            })
            .collect();
        paths.sort();
        for path in paths {
            logs.push((path.display().to_string(), corpora::read_text(&path)));
        }
    }
    logs.extend(corpora::tar_gz_texts(
        &dir.join("lightmeter-ControlCenter/complete.tar.gz"),
    ));
    for file in ["postfix-logsums/mail.log.gz", "digineo-postfix_exporter/mail.log"] {
        logs.push((file.to_owned(), corpora::read_text(&dir.join(file))));
    }
    logs
}

#[test]
fn every_corpus_log_read_again_changes_no_row() {
    let logs = corpus_logs();
    let failures: Vec<String> = logs
        .iter()
        .flat_map(|(name, text)| replays_differ(text).into_iter().map(move |d| format!("{name}: {d}")))
        .collect();
    assert!(failures.is_empty(), "{} logs: {failures:#?}", logs.len());
}

#[test]
fn every_corpus_log_gives_the_same_rows_live_and_imported_in_either_order() {
    let logs = corpus_logs();
    let failures: Vec<String> = logs
        .iter()
        .flat_map(|(name, text)| paths_differ(text).into_iter().map(move |d| format!("{name}: {d}")))
        .collect();
    assert!(failures.is_empty(), "{} logs: {failures:#?}", logs.len());
}

#[test]
fn a_held_message_gives_the_same_rows_live_and_imported_in_either_order() {
    let differences = paths_differ(HELD);
    assert!(differences.is_empty(), "{differences:#?}");
}
