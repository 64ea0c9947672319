//! Debian's pflogsumm (1.1.5), the report `elsed report` is compared with: running it, reading
//! its sections, and printing ELSE's JSON grand totals the way pflogsumm prints its own, so that
//! the two compare as text. Shared by elsed's report tests (corpora) and the three-server test
//! (logs a real Postfix wrote).

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

/// The grand totals both reports print, by pflogsumm's label, and the JSON name of each.
pub const TOTALS: [(&str, &str); 15] = [
    ("received", "received"),
    ("delivered", "delivered"),
    ("forwarded", "forwarded"),
    ("deferred", "deferred"),
    ("bounced", "bounced"),
    ("rejected", "rejected"),
    ("reject warnings", "reject_warnings"),
    ("held", "held"),
    ("discarded", "discarded"),
    ("bytes received", "bytes_received"),
    ("bytes delivered", "bytes_delivered"),
    ("senders", "senders"),
    ("sending hosts/domains", "sending_domains"),
    ("recipients", "recipients"),
    ("recipient hosts/domains", "recipient_domains"),
];

/// The smtpd programs whose lines pflogsumm reads as smtpd's.
pub const SMTPD_PROGRAMS: [&str; 3] = ["postfix/smtpd[", "postfix/smtps/smtpd[", "postfix/submission/smtpd["];

/// True when Debian's pflogsumm is installed, else false after [`crate::require`]'s notice.
pub fn installed() -> bool {
    crate::require::tool(PFLOGSUMM, "pflogsumm").is_some()
}

const PFLOGSUMM: &str = "/usr/sbin/pflogsumm";

/// pflogsumm's report (`--smtpd-stats` and `args`) of `log`, read from standard input as in
/// `pflogsumm < mail.log`.
pub fn run(log: &str, args: &[&str]) -> String {
    let mut child = Command::new(PFLOGSUMM)
        .arg("--smtpd-stats")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pflogsumm is installed (scripts/setup-debian.sh installs Debian's package)");
    let mut stdin = child.stdin.take().expect("pflogsumm's standard input");
    let input = log.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("pflogsumm ends");
    writer
        .join()
        .expect("writer thread")
        .expect("pflogsumm reads its input");
    assert!(
        output.status.success(),
        "pflogsumm: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The "Grand Totals" section: label → the number as printed (`27825k`), plus `deferrals` and the
/// `rejected %` and `discarded %` percentages.
pub fn grand_totals(report: &str) -> BTreeMap<String, String> {
    let section = report
        .split("Grand Totals\n------------\n")
        .nth(1)
        .unwrap_or_else(|| panic!("a Grand Totals section in:\n{report}"));
    let mut totals = BTreeMap::new();
    for line in section.lines().take_while(|l| !l.ends_with("--")) {
        let line = line.trim();
        let Some((number, rest)) = line.split_once(' ') else {
            continue;
        };
        if !number.starts_with(|c: char| c.is_ascii_digit()) {
            continue;
        }
        let rest = rest.trim();
        let (label, note) = match rest.split_once(" (") {
            Some((label, note)) => (label.trim(), Some(note.trim_end_matches(')'))),
            None => (rest, None),
        };
        totals.insert(label.to_owned(), number.to_owned());
        match (label, note) {
            ("deferred", Some(note)) => {
                let count = note.split_whitespace().next().unwrap_or_default();
                totals.insert("deferrals".to_owned(), count.to_owned());
            }
            ("rejected" | "discarded", Some(percent)) => {
                totals.insert(format!("{label} %"), percent.trim_end_matches('%').to_owned());
            }
            _ => {}
        }
    }
    totals
}

/// A number as pflogsumm prints it (`adj_int_units`: k above 512k, m above 512m, truncated).
pub fn units(value: i64) -> String {
    if value > 536_870_912 {
        format!("{}m", value / 1_048_576)
    } else if value > 524_288 {
        format!("{}k", value / 1024)
    } else {
        value.to_string()
    }
}

/// ELSE's grand totals (`elsed report --format json`) in pflogsumm's labels and print format.
pub fn printed(report: &Value) -> BTreeMap<String, String> {
    let totals = &report["grand_totals"];
    let number = |name: &str| totals[name].as_i64().unwrap_or_else(|| panic!("{name} in {totals}"));
    let mut printed: BTreeMap<String, String> = TOTALS
        .iter()
        .map(|(label, name)| (label.to_string(), units(number(name))))
        .collect();
    if number("deferrals") > 0 {
        printed.insert("deferrals".to_owned(), units(number("deferrals")));
    }
    printed.insert("rejected %".to_owned(), number("rejected_percent").to_string());
    printed.insert("discarded %".to_owned(), number("discarded_percent").to_string());
    printed
}

/// The rows of one of pflogsumm's sections, split on white space (headings and rules left out).
pub fn section(report: &str, title: &str) -> Option<Vec<Vec<String>>> {
    let start = report.find(&format!("\n{title}"))? + title.len() + 1;
    let body = &report[start..];
    let body = body.split_once('\n').map_or("", |(_, rest)| rest);
    let mut rows = Vec::new();
    for line in body.lines().skip_while(|l| l.trim_start().starts_with('-')) {
        if line.trim().is_empty() {
            break;
        }
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        if words[0].starts_with('-') || ["date", "sent", "msg"].contains(&words[0].as_str()) {
            continue;
        }
        rows.push(words);
    }
    Some(rows)
}
