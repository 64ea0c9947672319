//! Throwaway check: parses log files (plain or .gz) and prints the lines of Postfix programs that
//! came out `Unknown`, with a count per program. `cargo run -p omelse --example unknown_lines -- FILE…`

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

use omelse::parse::{parse_line, Clock, EventKind, Program};

fn main() {
    let mut clock = Clock::with_zone_name("UTC", omelse::parse::Timestamp::now()).expect("UTC");
    let mut unknown: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut kinds: BTreeMap<(String, &'static str), usize> = BTreeMap::new();
    let (mut total, mut bad_envelope) = (0usize, 0usize);
    for path in std::env::args().skip(1) {
        let file = std::fs::File::open(&path).expect("open");
        let reader: Box<dyn Read> = if path.ends_with(".gz") {
            Box::new(flate2::read::MultiGzDecoder::new(file))
        } else {
            Box::new(file)
        };
        for line in BufReader::new(reader).split(b'\n') {
            let line = String::from_utf8_lossy(&line.expect("read")).into_owned();
            total += 1;
            let Some(parsed) = parse_line(&line, &mut clock) else {
                bad_envelope += 1;
                continue;
            };
            if std::env::var_os("ELSE_DUMP").is_some() {
                println!("dump {line}\t{}", serde_json::to_string(&parsed.event).unwrap());
            }
            *kinds
                .entry((parsed.program.daemon.to_string(), parsed.event.kind.name()))
                .or_default() += 1;
            if parsed.event.kind == EventKind::Unknown {
                let program = Program::split(parsed.line.program);
                let key = if program.is_postfix() {
                    program.daemon.to_string()
                } else {
                    format!("(foreign) {}", program.name)
                };
                unknown.entry(key).or_default().push(parsed.line.message.to_string());
            }
        }
    }
    println!("{total} lines, {bad_envelope} without envelope");
    for ((program, kind), count) in &kinds {
        println!("kind {program} {kind} {count}");
    }
    for (program, lines) in &unknown {
        println!("== {program}: {}", lines.len());
        for line in lines.iter().take(40) {
            println!("   {line}");
        }
    }
}
