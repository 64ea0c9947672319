//! `elsed parse`: log lines on standard input, one JSON object per line on standard output — what
//! the parser makes of each line, without a database. Useful to check a log before an import and
//! to see which lines ELSE does not understand yet.

use std::io::{BufRead, Write};

use clap::Args;
use omelse::parse::{self, Clock, EventKind, ParsedLine, Timestamp};
use serde::Serialize;

use crate::Settings;

#[derive(Debug, Args)]
pub struct ParseArgs {
    /// Time zone of RFC 3164 timestamps (e.g. Europe/Paris) [default: `timezone` of the config
    /// file, else the machine's]
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,
    /// Reference time for the year of RFC 3164 timestamps (RFC 3339) [default: now]
    #[arg(long, value_name = "TIME")]
    year_reference: Option<String>,
}

/// One output line: the parse, plus the parts of the program tag.
#[derive(Serialize)]
struct Output<'a> {
    #[serde(flatten)]
    line: &'a ParsedLine<'a>,
    instance: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<&'a str>,
    daemon: &'a str,
}

/// A line without a readable syslog envelope.
#[derive(Serialize)]
struct Unparsed<'a> {
    kind: &'static str,
    raw: &'a str,
}

pub fn run(args: &ParseArgs, settings: &Settings) -> anyhow::Result<std::process::ExitCode> {
    let zone = settings.timezone(args.timezone.as_deref())?;
    let reference = match &args.year_reference {
        Some(text) => crate::time::parse_time(text, &zone)?,
        None => Timestamp::now(),
    };
    let mut clock = Clock::new(zone, reference);
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match parse_stream(stdin, &mut out, &mut clock) {
        Ok(()) => {}
        // `elsed parse | head` is fine: the reader went away.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(e.into()),
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Parses every line of `input` (invalid UTF-8 is replaced, never refused) and writes its JSON.
fn parse_stream(mut input: impl BufRead, out: &mut impl Write, clock: &mut Clock) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        if input.read_until(b'\n', &mut buffer)? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buffer);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        match parse::parse_line(text, clock) {
            Some(line) => serde_json::to_writer(&mut *out, &output(&line))?,
            None => serde_json::to_writer(
                &mut *out,
                &Unparsed {
                    kind: "unparsed",
                    raw: text,
                },
            )?,
        }
        out.write_all(b"\n")?;
    }
    out.flush()
}

fn output<'a>(line: &'a ParsedLine<'a>) -> Output<'a> {
    // anvil's statistics have a `service` of their own (`smtpd` in `(smtpd:192.0.2.1)`); the
    // program's stays readable in `program`.
    let event_has_service = matches!(line.event.kind, EventKind::Statistics { service: Some(_), .. });
    Output {
        line,
        instance: line.program.instance,
        service: line.program.service.filter(|_| !event_has_service),
        daemon: line.program.daemon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &[u8]) -> Vec<serde_json::Value> {
        let mut clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp::from_unix_seconds(1_700_000_000));
        let mut out = Vec::new();
        parse_stream(input, &mut out, &mut clock).unwrap();
        out.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    #[test]
    fn every_line_gives_one_object_even_garbage() {
        let values = parse_all(
            b"Nov 14 10:01:02 mx1 postfix-out/amavis/smtp[42]: 4F3A21C0: to=<b@example.org>, \
              relay=mx.example.org[192.0.2.1]:25, delay=1.2, delays=0.1/0/0.5/0.6, dsn=2.0.0, \
              status=sent (250 2.0.0 Ok: queued as 4F9D1C2B3A)\r\n\
              not a syslog line \xff\n\
              Nov 14 10:01:03 mx1 postfix/qmgr[7]: 4F3A21C0: removed",
        );
        assert_eq!(values.len(), 3);
        assert_eq!(values[0]["kind"], "delivery");
        assert_eq!(values[0]["time"], "2023-11-14T10:01:02.000000Z");
        assert_eq!(values[0]["queue_id"], "4F3A21C0");
        assert_eq!(values[0]["instance"], "postfix-out");
        assert_eq!(values[0]["service"], "amavis");
        assert_eq!(values[0]["daemon"], "smtp");
        assert_eq!(values[0]["to"], "b@example.org");
        assert_eq!(values[0]["queued_as"], "4F9D1C2B3A");
        assert_eq!(
            values[1],
            serde_json::json!({"kind": "unparsed", "raw": "not a syslog line \u{fffd}"})
        );
        assert_eq!(values[2]["queue_id"], "4F3A21C0");
        assert_eq!(values[2]["kind"], "removed");
        assert!(values[2].get("service").is_none());
    }
}
