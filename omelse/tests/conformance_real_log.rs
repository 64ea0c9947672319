//! Acceptance: no line of a Postfix daemon stays unknown, over every log line of the corpora —
//! above all the 69,861-line real MX log (postfix-logsums) and Lightmeter's rotated real log set
//! (complete.tar.gz) — and every line has a readable syslog envelope. The unknown lines are
//! printed grouped by program, Postfix's and the neighbours' (dovecot, amavis …) alike.

use std::collections::BTreeMap;
use std::path::Path;

use else_tests::corpora;
use omelse::correlate::Correlator;
use omelse::ingest::Pipeline;
use omelse::parse::{is_postfix_daemon, parse_line, parse_message, Clock, EventKind, Program, Timestamp};

/// One corpus file's lines, with the name it is reported under.
struct Source {
    name: String,
    text: String,
    /// For the 2014 grok sample files (`POSTFIX_ANVIL.log` …): message texts without a syslog
    /// envelope, all of this daemon.
    payload_of: Option<String>,
}

/// Every log file of the corpora (not the expected-result files, not the grok payloads, which have
/// no syslog envelope and are `conformance_grok`'s).
fn sources(dir: &Path) -> Vec<Source> {
    let mut sources = Vec::new();
    let mut add_dir = |sub: &str, keep: &dyn Fn(&str) -> bool| {
        let mut paths: Vec<_> = std::fs::read_dir(dir.join(sub))
            .unwrap_or_else(|e| panic!("{sub}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if keep(&name) {
                let payload_of = name
                    .strip_prefix("POSTFIX_")
                    .and_then(|n| n.strip_suffix(".log"))
                    .map(|n| n.to_lowercase());
                let text = corpora::read_text(&path);
                sources.push(Source {
                    name: format!("{sub}/{name}"),
                    text,
                    payload_of,
                });
            }
        }
    };
    add_dir("lightmeter-ControlCenter/individual_files", &|n| n.ends_with(".log"));
    add_dir("lightmeter-ControlCenter/logparser_corpus", &|n| n.ends_with(".txt"));
    add_dir("pmg-log-tracker", &|n| n.starts_with("test_input_"));
    add_dir("postfix-grok-patterns/test-legacy-logs", &|n| n.ends_with(".log"));
    add_dir("postfix_exporter", &|n| n.ends_with(".log"));
    add_dir("digineo-postfix_exporter", &|n| n == "mail.log");
    add_dir("fail2ban", &|n| n == "postfix");
    add_dir("postfix-logsums", &|n| n == "mail.log.gz");
    let complete = "lightmeter-ControlCenter/complete.tar.gz";
    for (name, text) in corpora::tar_gz_texts(&dir.join(complete)) {
        sources.push(Source {
            name: format!("{complete}:{name}"),
            text,
            payload_of: None,
        });
    }
    sources
}

/// Lines under a Postfix tag that are deliberately not Postfix's: pmg-log-tracker's
/// `test_input_foreign_lines` feeds junk under Postfix tags to check that its tracker ignores it.
const DELIBERATE_JUNK: &[(&str, &str)] = &[
    (
        "pmg-log-tracker/test_input_foreign_lines",
        "postfix/qmgr[2226]: STATISTICS1:",
    ),
    (
        "pmg-log-tracker/test_input_foreign_lines",
        "postfix/cleanup[2229]: CLEANUP99:",
    ),
    (
        "pmg-log-tracker/test_input_foreign_lines",
        "postfix/lmtp[2231]: DELIVERY1:",
    ),
    (
        "pmg-log-tracker/test_input_foreign_lines",
        "postfix/smtpd[99999]: FOOBAR99:",
    ),
];

/// Lines that are not log lines at all: blank lines, fail2ban's `# failJSON: {…}` expectations,
/// the cases commented out in the 2014 grok samples.
fn is_not_a_log_line(source: &Source, line: &str) -> bool {
    line.trim().is_empty()
        || (line.starts_with('#') && (source.name == "fail2ban/postfix" || source.payload_of.is_some()))
}

/// Lines without a syslog envelope that are not a failure of ours.
const NOT_LINES: &[(&str, &str, &str)] = &[(
    "lightmeter-ControlCenter/individual_files/18_expired.log",
    "ir/)",
    "the tail of the line before it, split by a newline inside a local(8) `delivered to command` \
     text; the pipeline keeps it raw as `unparsed`",
)];

#[derive(Default)]
struct Unknown {
    count: usize,
    examples: Vec<String>,
}

#[test]
fn no_postfix_line_stays_unknown() {
    let Some(dir) = corpora::dir_or_skip() else {
        return;
    };
    let sources = sources(&dir);
    let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"postfix-logsums/mail.log.gz"));
    assert!(
        names
            .iter()
            .filter(|n| n.starts_with("lightmeter-ControlCenter/complete.tar.gz:"))
            .count()
            >= 4,
        "the rotated set has mail.log, mail.log.1, mail.warn*, mail.err*: {names:?}"
    );
    // The logs carry no year or a past one; any reference after them reads every date.
    let mut clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp::from_unix_seconds(1_735_689_599));
    let mut per_source: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut postfix_unknown: BTreeMap<String, Unknown> = BTreeMap::new();
    let mut other_unknown: BTreeMap<String, Unknown> = BTreeMap::new();
    let mut unreadable = Vec::new();
    let mut junk_seen = 0;
    let (mut lines, mut postfix_lines, mut not_lines_seen) = (0, 0, 0);
    for source in &sources {
        let counts = per_source.entry(&source.name).or_default();
        let payload_program = source.payload_of.as_ref().map(|d| format!("postfix/{d}"));
        for line in source.text.lines() {
            if is_not_a_log_line(source, line) {
                continue;
            }
            lines += 1;
            counts.0 += 1;
            let (program, unknown) = match &payload_program {
                Some(name) => {
                    let program = Program::split(name);
                    let event = parse_message(&program, line);
                    (program, matches!(event.kind, EventKind::Unknown))
                }
                None => match parse_line(line, &mut clock) {
                    Some(parsed) => {
                        let tail = format!(
                            "{}[{}]: {}",
                            parsed.line.program,
                            parsed.line.pid.unwrap_or(0),
                            parsed.line.message
                        );
                        if DELIBERATE_JUNK.iter().any(|(s, l)| *s == source.name && tail == *l) {
                            junk_seen += 1;
                            continue;
                        }
                        (parsed.program, matches!(parsed.event.kind, EventKind::Unknown))
                    }
                    None if NOT_LINES.iter().any(|(s, l, _)| *s == source.name && *l == line) => {
                        not_lines_seen += 1;
                        continue;
                    }
                    None => {
                        unreadable.push(format!("{}: {line}", source.name));
                        continue;
                    }
                },
            };
            // A Postfix daemon under any syslog_name (`postfix-in/smtpd`, `postfix/10025/smtpd`);
            // not another program that borrows the `a/b` shape (`lightmeter/headers`).
            let postfix = program.is_postfix() && is_postfix_daemon(program.daemon);
            if postfix {
                postfix_lines += 1;
            }
            if !unknown {
                continue;
            }
            let group = if postfix {
                &mut postfix_unknown
            } else {
                &mut other_unknown
            };
            let entry = group.entry(program.name.to_owned()).or_default();
            entry.count += 1;
            if postfix {
                counts.1 += 1;
            }
            if entry.examples.len() < if postfix { 40 } else { 3 } {
                entry.examples.push(format!("{}: {line}", source.name));
            }
        }
    }
    println!(
        "{lines} log lines ({postfix_lines} from Postfix daemons) in {} files",
        sources.len()
    );
    for (name, (n, unknown)) in &per_source {
        println!("  {name}: {n} lines, {unknown} unknown Postfix lines");
    }
    println!("unknown lines of other programs (not asserted: neighbours ELSE may leave alone):");
    for (program, u) in &other_unknown {
        println!("  {program}: {} line(s), e.g.", u.count);
        for e in &u.examples {
            println!("      {e}");
        }
    }
    let total: usize = postfix_unknown.values().map(|u| u.count).sum();
    println!("unknown lines of Postfix daemons: {total}");
    for (program, u) in &postfix_unknown {
        println!("  {program}: {} line(s)", u.count);
        for e in &u.examples {
            println!("      {e}");
        }
    }
    for l in &unreadable {
        println!("unreadable envelope: {l}");
    }
    assert_eq!(
        junk_seen,
        DELIBERATE_JUNK.len(),
        "each deliberate junk line is where it is said to be"
    );
    assert_eq!(
        not_lines_seen,
        NOT_LINES.len(),
        "each broken line is where it is said to be"
    );
    assert!(lines > 80_000, "only {lines} log lines read");
    assert_eq!(per_source["postfix-logsums/mail.log.gz"].0, 69_861);
    let rotated: usize = per_source
        .iter()
        .filter(|(name, _)| name.starts_with("lightmeter-ControlCenter/complete.tar.gz:"))
        .map(|(_, (n, _))| n)
        .sum();
    assert!(rotated > 9_000, "the rotated set has about 9,069 lines, read {rotated}");
    assert!(
        unreadable.is_empty(),
        "{} lines without a readable syslog envelope",
        unreadable.len()
    );
    assert_eq!(
        total,
        0,
        "{total} unknown lines of Postfix daemons, in {} programs (listed above)",
        postfix_unknown.len()
    );
}

/// The same for the figures a user sees: `elsed import` prints the pipeline's count of unknown
/// Postfix lines per program, which must stay empty on the two real logs.
#[test]
fn the_pipeline_counts_no_unknown_postfix_line_in_the_real_logs() {
    let Some(dir) = corpora::dir_or_skip() else {
        return;
    };
    let mut logs = vec![(
        "postfix-logsums/mail.log.gz".to_owned(),
        corpora::read_text(&dir.join("postfix-logsums/mail.log.gz")),
    )];
    logs.extend(corpora::tar_gz_texts(
        &dir.join("lightmeter-ControlCenter/complete.tar.gz"),
    ));
    for (name, text) in &logs {
        let clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp::from_unix_seconds(1_735_689_599));
        let mut pipeline = Pipeline::new(clock, Correlator::new());
        for line in text.lines() {
            pipeline.push_line(line);
        }
        let batch = pipeline.take_batch();
        let stats = pipeline.stats();
        println!("{name}: {} lines, {:?}", stats.lines, stats.events_by_kind);
        assert_eq!(
            batch.events.len() as u64,
            stats.lines,
            "{name}: every line is an event row"
        );
        assert_eq!(stats.unparsed, 0, "{name}: lines without a readable envelope");
        assert!(
            stats.unknown_by_program.is_empty(),
            "{name}: unknown Postfix lines by program: {:?}",
            stats.unknown_by_program
        );
    }
}
