//! `elsed report` against Debian's pflogsumm (1.1.5) on the same logs: the grand totals agree,
//! except where pflogsumm counts a content filter's hop as traffic (its FAQ says it does).
//!
//! How the exception is checked without trusting ELSE: the test takes the filter hops out of
//! pflogsumm's input itself (deliveries to a loopback filter port that say `queued as X`, and the
//! `client=` line of X), and pflogsumm on that input must then agree with ELSE on every total.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use else_tests::pflogsumm::{grand_totals, printed, section, units, SMTPD_PROGRAMS, TOTALS};
use else_tests::PgCluster;
use serde_json::Value;

const ELSED: &str = env!("CARGO_BIN_EXE_elsed");

/// What a content-filter hop inflates in pflogsumm's totals; everything else must be equal as is.
const INFLATED_BY_HOPS: [&str; 6] = [
    "received",
    "delivered",
    "bytes received",
    "bytes delivered",
    "recipients",
    "recipient hosts/domains",
];

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("elsed-report-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs elsed against `url`, isolated from the machine's settings (empty configuration file).
fn elsed(url: &str, args: &[&str]) -> Output {
    let empty = scratch("config").join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let output = Command::new(ELSED)
        .env_remove("ELSE_DATABASE_URL")
        .env("ELSE_CONFIG", &empty)
        .args(["--database-url", url])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("elsed runs");
    assert!(output.status.success(), "elsed {args:?}: {}", text(&output.stderr));
    output
}

fn import(url: &str, log: &Path) {
    elsed(
        url,
        &[
            "import",
            "--force",
            "--timezone",
            "UTC",
            "--year-reference",
            "2024-12-31T00:00:00Z",
            log.to_str().unwrap(),
        ],
    );
}

fn report(url: &str, extra: &[&str]) -> Value {
    let mut args = vec!["report", "--format", "json"];
    if !extra.contains(&"--timezone") {
        args.extend(["--timezone", "UTC"]);
    }
    args.extend_from_slice(extra);
    let output = elsed(url, &args);
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&output.stdout)))
}

/// `report --format json` in `zone` (the zone of the log's local times, for days and hours).
fn report_in(url: &str, zone: &str) -> Value {
    report(url, &["--timezone", zone])
}

/// pflogsumm's report of `log`.
fn pflogsumm(log: &str) -> String {
    else_tests::pflogsumm::run(log, &[])
}

/// The log without its content-filter hops, found the simple way: a `status=sent` delivery to a
/// loopback address on a port other than 25/465/587 whose reply says `queued as X` is a hand-off
/// to a filter, and `X: client=` is the filter's re-injection. Returns the log and how many
/// re-injection `client=` lines it dropped that pflogsumm counts as received.
fn without_filter_hops(log: &str) -> (String, usize) {
    let mut reinjected = HashSet::new();
    let mut kept = Vec::new();
    for line in log.lines() {
        match filter_handoff(line) {
            Some(next) => {
                reinjected.insert(next.to_owned());
            }
            None => kept.push(line),
        }
    }
    let mut dropped = 0;
    let kept: Vec<&str> = kept
        .into_iter()
        .filter(|line| {
            let reinjection = line.split_once(": client=").is_some_and(|(head, _)| {
                head.rsplit(": ")
                    .next()
                    .is_some_and(|queue_id| reinjected.contains(queue_id))
            });
            // pflogsumm takes `client=` for a reception only from `postfix/smtpd` (or the smtps and
            // submission services), not from a re-injection service named `postfix/10025/smtpd`.
            let seen = SMTPD_PROGRAMS.iter().any(|program| line.contains(program));
            dropped += usize::from(reinjection && seen);
            !reinjection
        })
        .collect();
    (kept.join("\n") + "\n", dropped)
}

/// The queue id a filter hand-off line names, if `line` is one.
fn filter_handoff(line: &str) -> Option<&str> {
    let (_, after) = line.split_once(" relay=")?;
    let relay = after.split(',').next()?;
    let (_, address) = relay.split_once('[')?;
    let (ip, port) = address.split_once("]:")?;
    let loopback = ip.starts_with("127.") || ip == "::1";
    if !loopback || ["25", "465", "587"].contains(&port) || !line.contains("status=sent ") {
        return None;
    }
    let queued_as = line.rsplit_once("queued as ")?.1;
    let end = queued_as
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(queued_as.len());
    Some(&queued_as[..end])
}

/// What one comparison found, for the assertions and the message of a failure.
struct Comparison {
    ours: BTreeMap<String, String>,
    pflogsumm: BTreeMap<String, String>,
    pflogsumm_without_hops: BTreeMap<String, String>,
    /// pflogsumm's whole report on the log without filter hops, for the other sections.
    full_without_hops: String,
    reinjections_seen_by_pflogsumm: usize,
    report: Value,
    log: String,
}

/// Ours beside pflogsumm's on `log`; `None` without pflogsumm ([`else_tests::require`]).
async fn compare(name: &str, log: &str) -> Option<Comparison> {
    compare_in(name, log, "UTC").await
}

/// [`compare`] for a log whose local times are in `zone`.
async fn compare_in(name: &str, log: &str, zone: &str) -> Option<Comparison> {
    if !else_tests::pflogsumm::installed() {
        return None;
    }
    let dir = scratch(name);
    let path = dir.join("mail.log");
    std::fs::write(&path, log).unwrap();
    let url = PgCluster::shared().create_database().await;
    import(&url, &path);
    let report = report_in(&url, zone);
    let (filtered, reinjections_seen_by_pflogsumm) = without_filter_hops(log);
    let full_without_hops = pflogsumm(&filtered);
    let comparison = Comparison {
        ours: printed(&report),
        pflogsumm: grand_totals(&pflogsumm(log)),
        pflogsumm_without_hops: grand_totals(&full_without_hops),
        full_without_hops,
        reinjections_seen_by_pflogsumm,
        report,
        log: log.to_owned(),
    };
    std::fs::remove_dir_all(&dir).ok();
    Some(comparison)
}

/// The acceptance: every total equals pflogsumm's on the log without filter hops; on the log as
/// it is, every total not inflated by the hops equals pflogsumm's, and received and delivered
/// differ by exactly the hops.
fn assert_agrees(name: &str, c: &Comparison) {
    for (label, _) in TOTALS {
        assert_eq!(
            c.ours.get(label),
            c.pflogsumm_without_hops.get(label),
            "{name}: {label}: ELSE {:?}, pflogsumm without filter hops {:?}",
            c.ours,
            c.pflogsumm_without_hops
        );
        if !INFLATED_BY_HOPS.contains(&label) {
            assert_eq!(
                c.ours.get(label),
                c.pflogsumm.get(label),
                "{name}: {label}: ELSE {:?}, pflogsumm {:?}",
                c.ours,
                c.pflogsumm
            );
        }
    }
    for extra in ["deferrals", "rejected %", "discarded %"] {
        assert_eq!(
            c.ours.get(extra),
            c.pflogsumm_without_hops.get(extra),
            "{name}: {extra}"
        );
    }
    let totals = &c.report["grand_totals"];
    let hops = &c.report["filter_hops"];
    let count = |v: &Value, k: &str| v[k].as_i64().unwrap();
    let pflogsumm_count = |label: &str| c.pflogsumm[label].parse::<i64>().unwrap();
    assert_eq!(
        pflogsumm_count("delivered"),
        count(totals, "delivered") + count(hops, "handed_to_filter"),
        "{name}: pflogsumm's delivered are ELSE's plus the deliveries into the filter ({hops})"
    );
    assert_eq!(
        pflogsumm_count("received"),
        count(totals, "received") + c.reinjections_seen_by_pflogsumm as i64,
        "{name}: pflogsumm's received are ELSE's plus the re-injections logged as postfix/smtpd"
    );
    assert!(
        count(hops, "reinjected") >= c.reinjections_seen_by_pflogsumm as i64,
        "{name}: {hops}"
    );
    assert_sections_agree(name, c);
    assert_connections_agree(name, c);
}

/// smtpd connections: ELSE counts every smtpd service's sessions; pflogsumm only those of
/// `postfix/smtpd`, `postfix/smtps/smtpd` and `postfix/submission/smtpd` (not a re-injection
/// listener named `postfix/10025/smtpd`, nor another instance's `postfix-in/smtpd`).
fn assert_connections_agree(name: &str, c: &Comparison) {
    let unread = c
        .log
        .lines()
        .filter(|line| {
            line.contains("/smtpd[")
                && line.contains("]: disconnect from ")
                && !SMTPD_PROGRAMS.iter().any(|program| line.contains(program))
        })
        .count() as i64;
    let ours = c.report["smtpd"]["connections"].as_i64().unwrap();
    let theirs: i64 = c.pflogsumm_without_hops["connections"].parse().unwrap();
    assert_eq!(
        ours,
        theirs + unread,
        "{name}: smtpd connections ({unread} of other smtpd services)"
    );
}

/// Per-day traffic, host/domain summaries and the senders and recipients by count agree with
/// pflogsumm's on the log without filter hops (as sets: ties are ordered differently).
fn assert_sections_agree(name: &str, c: &Comparison) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let theirs = |title: &str| section(&c.full_without_hops, title);
    let days = c.report["traffic"]["days"].as_array().unwrap();
    match theirs("Per-Day Traffic Summary") {
        Some(rows) => {
            let theirs: BTreeMap<String, Vec<String>> = rows
                .into_iter()
                .map(|mut r| {
                    // A day's row stops after its last count that is not zero.
                    r.resize(8, "0".to_owned());
                    (format!("{} {}", r[0], r[1]), r[3..8].to_vec())
                })
                .collect();
            let ours: BTreeMap<String, Vec<String>> = days
                .iter()
                .map(|d| {
                    let date = d["date"].as_str().unwrap();
                    let month: usize = date[5..7].parse().unwrap();
                    let day: u32 = date[8..10].parse().unwrap();
                    let counts = ["received", "delivered", "deferred", "bounced", "rejected"]
                        .map(|k| units(d[k].as_i64().unwrap()))
                        .to_vec();
                    (format!("{} {day}", MONTHS[month - 1]), counts)
                })
                .collect();
            assert_eq!(ours, theirs, "{name}: per-day traffic");
        }
        // pflogsumm prints days only for a log of more than one.
        None => assert!(days.len() <= 1, "{name}: {days:?}"),
    }
    let keyed = |rows: Vec<Vec<String>>, columns: &[usize]| -> BTreeMap<String, Vec<String>> {
        rows.into_iter()
            .map(|r| {
                (
                    r.last().unwrap().clone(),
                    columns.iter().map(|&i| r[i].clone()).collect(),
                )
            })
            .collect()
    };
    let ours_keyed = |list: &str, key: &str, columns: &[&str]| -> BTreeMap<String, Vec<String>> {
        c.report[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| {
                let values = columns.iter().map(|k| units(row[*k].as_i64().unwrap())).collect();
                (row[key].as_str().unwrap().to_owned(), values)
            })
            .collect()
    };
    let delivery = theirs("Host/Domain Summary: Message Delivery").expect("delivery summary");
    assert!(!delivery.is_empty(), "{name}: {}", c.full_without_hops);
    assert_eq!(
        ours_keyed("delivery_domains", "domain", &["sent", "bytes", "deferrals"]),
        keyed(delivery, &[0, 1, 2]),
        "{name}: delivery by domain"
    );
    let received = theirs("Host/Domain Summary: Messages Received").expect("reception summary");
    assert_eq!(
        ours_keyed("received_domains", "domain", &["messages", "bytes"]),
        keyed(received, &[0, 1]),
        "{name}: reception by domain"
    );
    for (title, list) in [
        ("Senders by message count", "senders_by_count"),
        ("Recipients by message count", "recipients_by_count"),
    ] {
        let rows = theirs(title).unwrap_or_default();
        assert_eq!(
            ours_keyed(list, "address", &["messages"]),
            keyed(rows, &[0]),
            "{name}: {title}"
        );
    }
}

fn corpora() -> Option<PathBuf> {
    else_tests::corpora::dir_or_skip()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grand_totals_agree_with_pflogsumm_on_the_fixture() {
    let log =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail.log")).unwrap();
    let Some(c) = compare("fixture", &log).await else {
        return;
    };
    assert_agrees("fixture", &c);
    // The fixture passes one message through amavis: two deliveries into it (two recipients).
    assert_eq!(
        c.report["filter_hops"]["handed_to_filter"], 2,
        "{}",
        c.report["filter_hops"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grand_totals_agree_with_pflogsumm_on_postfix_logsums() {
    let Some(corpora) = corpora() else { return };
    // RFC 3339 timestamps: pflogsumm 1.1.5 reads them itself (its second timestamp pattern).
    let log = else_tests::corpora::read_text(&corpora.join("postfix-logsums/mail.log.gz"));
    // Its times are +01:00: days are Berlin's, as pflogsumm reads them.
    let Some(c) = compare_in("logsums", &log, "Europe/Berlin").await else {
        return;
    };
    assert_agrees("logsums", &c);
    assert!(
        c.pflogsumm["received"].parse::<i64>().unwrap() > 100,
        "{:?}",
        c.pflogsumm
    );
    // 180 messages went through amavis; their re-injection is logged as postfix/10025/smtpd, which
    // pflogsumm does not take for smtpd, so only the delivery side is double counted here.
    assert_eq!(c.report["filter_hops"]["handed_to_filter"], 180);
    assert_eq!(c.reinjections_seen_by_pflogsumm, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grand_totals_agree_with_pflogsumm_on_lightmeter_complete() {
    let Some(corpora) = corpora() else { return };
    let files = else_tests::corpora::tar_gz_texts(&corpora.join("lightmeter-ControlCenter/complete.tar.gz"));
    // The rotated mail.log set, oldest first (mail.log.1 then mail.log).
    let text_of = |name: &str| {
        files
            .iter()
            .find(|(path, _)| path.ends_with(name))
            .map(|(_, text)| text.clone())
            .unwrap_or_else(|| panic!("{name} in complete.tar.gz"))
    };
    let log = text_of("/mail.log.1") + &text_of("/mail.log");
    let Some(c) = compare("lightmeter", &log).await else {
        return;
    };
    assert_agrees("lightmeter", &c);
    // Here the re-injection is plain postfix/smtpd: pflogsumm counts it as received a second time.
    assert_eq!(c.reinjections_seen_by_pflogsumm, 155);
    assert_eq!(c.report["filter_hops"]["reinjected"], 155);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grand_totals_agree_with_pflogsumm_on_digineo() {
    let Some(corpora) = corpora() else { return };
    let log = else_tests::corpora::read_text(&corpora.join("digineo-postfix_exporter/mail.log"));
    let Some(c) = compare("digineo", &log).await else {
        return;
    };
    assert_agrees("digineo", &c);
    // No content filter: the two reports agree on the log as it is.
    let theirs: BTreeMap<String, String> = c
        .pflogsumm
        .iter()
        .filter(|(label, _)| c.ours.contains_key(*label))
        .map(|(label, value)| (label.clone(), value.clone()))
        .collect();
    assert_eq!(c.ours, theirs);
}

/// Why ELSE differs from pflogsumm: one e-mail through amavis is two queue ids. pflogsumm counts
/// it received twice (from the Internet, then from amavis on localhost) and delivered twice (to
/// amavis, then to the mailbox), its bytes twice, and the address it had before alias expansion
/// (postmaster@, which amavis saw) as a recipient beside the mailbox it was delivered to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_filter_hop_is_counted_once_where_pflogsumm_counts_it_twice() {
    let log = "\
Mar 14 10:00:00 mx postfix/smtpd[100]: connect from mail.example.net[192.0.2.10]
Mar 14 10:00:01 mx postfix/smtpd[100]: 1A2B3C4D5E: client=mail.example.net[192.0.2.10]
Mar 14 10:00:01 mx postfix/cleanup[101]: 1A2B3C4D5E: message-id=<demo1@example.net>
Mar 14 10:00:01 mx postfix/qmgr[102]: 1A2B3C4D5E: from=<carol@example.net>, size=2000, nrcpt=1 (queue active)
Mar 14 10:00:01 mx postfix/smtpd[100]: disconnect from mail.example.net[192.0.2.10] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Mar 14 10:00:02 mx postfix/smtpd[200]: connect from localhost[127.0.0.1]
Mar 14 10:00:02 mx postfix/smtpd[200]: 6F7A8B9C0D: client=localhost[127.0.0.1]
Mar 14 10:00:02 mx postfix/cleanup[101]: 6F7A8B9C0D: message-id=<demo1@example.net>
Mar 14 10:00:02 mx postfix/qmgr[102]: 6F7A8B9C0D: from=<carol@example.net>, size=2500, nrcpt=1 (queue active)
Mar 14 10:00:02 mx postfix/smtpd[200]: disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Mar 14 10:00:02 mx postfix/smtp[103]: 1A2B3C4D5E: to=<postmaster@example.org>, relay=127.0.0.1[127.0.0.1]:10024, delay=1.2, delays=0.1/0/0/1.1, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 6F7A8B9C0D)
Mar 14 10:00:02 mx postfix/qmgr[102]: 1A2B3C4D5E: removed
Mar 14 10:00:03 mx postfix/lmtp[104]: 6F7A8B9C0D: to=<alice@example.org>, orig_to=<postmaster@example.org>, relay=mx[private/dovecot-lmtp], delay=0.3, delays=0.1/0/0/0.2, dsn=2.0.0, status=sent (250 2.0.0 <alice@example.org> Saved)
Mar 14 10:00:03 mx postfix/qmgr[102]: 6F7A8B9C0D: removed
Mar 14 10:00:05 mx postfix/smtpd[300]: NOQUEUE: reject: RCPT from unknown[198.51.100.7]: 554 5.7.1 <spam@example.org>: Relay access denied; from=<x@spam.test> to=<spam@example.org> proto=ESMTP helo=<spam.test>
";
    let Some(c) = compare("demo", log).await else { return };
    let pflogsumm = |label: &str| c.pflogsumm[label].as_str();
    let ours = |label: &str| c.ours[label].as_str();
    // pflogsumm: one e-mail, twice.
    assert_eq!(
        [
            pflogsumm("received"),
            pflogsumm("delivered"),
            pflogsumm("bytes received"),
            pflogsumm("bytes delivered")
        ],
        ["2", "2", "4500", "4500"],
        "{:?}",
        c.pflogsumm
    );
    assert_eq!([pflogsumm("recipients"), pflogsumm("rejected %")], ["2", "33"]);
    // ELSE: received once (2000 bytes from the Internet), delivered once (the 2500 bytes amavis
    // re-injected, headers added), to the one mailbox; a third of 3 is a half of 2.
    assert_eq!(
        [
            ours("received"),
            ours("delivered"),
            ours("bytes received"),
            ours("bytes delivered")
        ],
        ["1", "1", "2000", "2500"],
        "{:?}",
        c.ours
    );
    assert_eq!([ours("recipients"), ours("rejected %")], ["1", "50"]);
    assert_eq!(c.report["recipients_by_count"][0]["address"], "alice@example.org");
    assert_agrees("demo", &c);
}

/// Two more places where pflogsumm under-counts, found reading its source: it reads only lines of
/// the syslog name `postfix` (a second instance, `postfix-in/smtpd`, is invisible to it unless
/// run once more with `--syslog-name`), and it takes `reject:` for a reject but not smtpd's
/// `milter-reject:` (a milter refusing a recipient). ELSE counts both. (On the corpora neither
/// happens, so their totals agree.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_and_milter_rejects_count_where_pflogsumm_misses_them() {
    let log = "\
Mar 14 11:00:00 mx postfix-in/smtpd[400]: connect from mail.example.net[192.0.2.10]
Mar 14 11:00:01 mx postfix-in/smtpd[400]: 3A3B3C3D3E: client=mail.example.net[192.0.2.10]
Mar 14 11:00:01 mx postfix-in/cleanup[401]: 3A3B3C3D3E: message-id=<demo2@example.net>
Mar 14 11:00:01 mx postfix-in/qmgr[402]: 3A3B3C3D3E: from=<carol@example.net>, size=1500, nrcpt=1 (queue active)
Mar 14 11:00:01 mx postfix-in/smtpd[400]: disconnect from mail.example.net[192.0.2.10] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5
Mar 14 11:00:02 mx postfix-in/lmtp[403]: 3A3B3C3D3E: to=<alice@example.org>, relay=mx[private/dovecot-lmtp], delay=0.5, delays=0.1/0/0/0.4, dsn=2.0.0, status=sent (250 2.0.0 <alice@example.org> Saved)
Mar 14 11:00:02 mx postfix-in/qmgr[402]: 3A3B3C3D3E: removed
Mar 14 11:00:05 mx postfix/smtpd[500]: connect from unknown[198.51.100.8]
Mar 14 11:00:06 mx postfix/smtpd[500]: NOQUEUE: milter-reject: RCPT from unknown[198.51.100.8]: 550 5.7.1 Command rejected; from=<x@spam.test> to=<bob@example.org> proto=ESMTP helo=<spam.test>
Mar 14 11:00:06 mx postfix/smtpd[500]: disconnect from unknown[198.51.100.8] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4
";
    let Some(c) = compare("instances", log).await else {
        return;
    };
    let pick = |totals: &BTreeMap<String, String>| {
        [
            "received",
            "delivered",
            "bytes received",
            "bytes delivered",
            "rejected",
            "senders",
            "recipients",
        ]
        .map(|label| totals[label].clone())
    };
    assert_eq!(
        pick(&c.pflogsumm),
        ["0", "0", "0", "0", "0", "0", "0"],
        "{:?}",
        c.pflogsumm
    );
    assert_eq!(pick(&c.ours), ["1", "1", "1500", "1500", "1", "1", "1"], "{:?}", c.ours);
    assert_eq!(c.ours["rejected %"], "50");
    // Told the instance's name, pflogsumm sees its half: the message, not postfix's milter reject.
    let instance = grand_totals(&else_tests::pflogsumm::run(log, &["--syslog-name", "postfix-in"]));
    assert_eq!(
        [&instance["received"], &instance["delivered"], &instance["rejected"]],
        ["1", "1", "0"],
        "{instance:?}"
    );
}

/// The scope options split the same totals: the fixture's two servers add up to the whole, and a
/// domain keeps only its own traffic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_domain_and_time_scopes_partition_the_totals() {
    let url = PgCluster::shared().create_database().await;
    import(
        &url,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail.log"),
    );
    let all = report(&url, &[]);
    let total = |r: &Value, k: &str| r["grand_totals"][k].as_i64().unwrap();
    let mx1 = report(&url, &["--host", "mx1"]);
    let out1 = report(&url, &["--host", "out1"]);
    for key in [
        "received",
        "delivered",
        "bounced",
        "rejected",
        "bytes_received",
        "bytes_delivered",
    ] {
        assert_eq!(total(&mx1, key) + total(&out1, key), total(&all, key), "{key}");
    }
    assert!(total(&mx1, "received") > 0 && total(&out1, "received") > 0);
    let nobody = report(&url, &["--host", "no-such-server"]);
    assert_eq!(total(&nobody, "received") + total(&nobody, "delivered"), 0);
    // Before the log starts, nothing; from its first day on, everything.
    let before = report(&url, &["--until", "2024-01-01"]);
    assert_eq!(total(&before, "received") + total(&before, "delivered"), 0);
    let during = report(&url, &["--since", "2024-01-01"]);
    assert_eq!(during["grand_totals"], all["grand_totals"]);
    // A domain: every recipient listed is in it or the message came from it.
    let domain = all["recipients_by_count"][0]["address"]
        .as_str()
        .unwrap()
        .split('@')
        .nth(1)
        .unwrap()
        .to_owned();
    let scoped = report(&url, &["--domain", &domain]);
    assert!(total(&scoped, "delivered") > 0);
    assert!(total(&scoped, "delivered") <= total(&all, "delivered"));
    // Within any scope, the days add up to the totals.
    for r in [&all, &mx1, &out1, &scoped] {
        for key in ["received", "delivered", "bounced"] {
            let days: i64 = r["traffic"]["days"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d[key].as_i64().unwrap())
                .sum();
            assert_eq!(days, total(r, key), "{key} per day: {}", r["scope"]);
        }
    }
}

/// Text and HTML carry the same sections; HTML escapes what the log says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_html_formats_draw_every_section() {
    let url = PgCluster::shared().create_database().await;
    import(
        &url,
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/mail.log"),
    );
    let json = report(&url, &[]);
    let text_report = text(&elsed(&url, &["report", "--timezone", "UTC"]).stdout);
    let html = text(&elsed(&url, &["report", "--format", "html", "--timezone", "UTC"]).stdout);
    for title in [
        "Grand Totals",
        "Per-Day Traffic Summary",
        "Host/Domain Summary: Message Delivery",
        "Host/Domain Summary: Messages Received",
        "Senders by message count",
        "Recipients by message size",
        "Message deferral detail",
        "Message bounce detail (by relay)",
        "SMTPD connections",
        "Warnings, fatal errors and panics",
    ] {
        assert!(text_report.contains(title), "{title} missing from:\n{text_report}");
        assert!(
            html.contains(&format!("<h2>{title}</h2>")),
            "{title} missing from the HTML"
        );
    }
    let received = json["grand_totals"]["received"].as_i64().unwrap();
    assert!(text_report.contains(&format!(" {received} received")), "{text_report}");
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(
        !html.contains("<spam@") && !html.contains("<bob@"),
        "addresses in the HTML are escaped"
    );
}
