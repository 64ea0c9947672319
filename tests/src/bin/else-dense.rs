//! `else-dense`: records the dense fixture from a private Postfix pair, and replicates it as a
//! stream of many fleets (see [`else_tests::dense`]).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use else_tests::dense::record::{self, Recording};
use else_tests::dense::{Fixture, Replication, Stream};

#[derive(Parser)]
#[command(about = "The dense benchmark input: record it from a Postfix pair, replicate it as fleets")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Drives a private Postfix pair with smtp-source and writes its log, gzipped (needs root).
    Record {
        /// Where the log goes (default: the fixture in tests/fixtures/dense/).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Seconds of load.
        #[arg(long, default_value_t = 120)]
        seconds: u64,
        /// Seconds the queues may take to drain afterwards.
        #[arg(long, default_value_t = 90)]
        drain: u64,
        /// Seconds mx.slow.test refuses (450) before it accepts for a third as long (the queue
        /// lifetime is 20 s: mail refused from the start of a window expires).
        #[arg(long, default_value_t = 40)]
        slow_window: u64,
    },
    /// Writes the fixture replicated as FLEETS fleets interleaved in time, LINES lines in all
    /// (`RFC3339 host program[pid]: message`), ending now unless --start is given; then prints
    /// `{"lines": …, "messages": …, "fleets": …}` on stderr (messages: what omelse should count).
    Replicate {
        #[arg(long, default_value_t = 16)]
        fleets: usize,
        #[arg(long, default_value_t = 245_000)]
        lines: usize,
        /// The first line's time (RFC 3339).
        #[arg(long)]
        start: Option<jiff::Timestamp>,
        /// Prefix each line with a syslog priority (`<22>`: mail.info), as a sender on the network.
        #[arg(long)]
        priority: bool,
        /// Where the lines go (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Another recording than the committed fixture.
        #[arg(long)]
        fixture: Option<PathBuf>,
    },
}

fn main() {
    let args = Args::parse();
    match args.command {
        Command::Record {
            out,
            seconds,
            drain,
            slow_window,
        } => {
            if let Some(reason) = record::unavailable() {
                eprintln!("else-dense record: {reason}");
                std::process::exit(1);
            }
            record::record(
                &out.unwrap_or_else(record::fixture_path),
                Recording {
                    load: Duration::from_secs(seconds),
                    drain: Duration::from_secs(drain),
                    slow_window: Duration::from_secs(slow_window),
                },
            );
        }
        Command::Replicate {
            fleets,
            lines,
            start,
            priority,
            out,
            fixture,
        } => {
            let fixture = fixture.map_or_else(Fixture::committed, |path| Fixture::load(&path));
            let replication = match start {
                Some(start) => Replication { fleets, lines, start },
                None => Replication::ending_now(&fixture, fleets, lines),
            };
            let sink: Box<dyn Write> = match out {
                Some(path) => {
                    Box::new(std::fs::File::create(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
                }
                None => Box::new(std::io::stdout().lock()),
            };
            let mut sink = std::io::BufWriter::new(sink);
            let mut stream = Stream::new(&fixture, replication);
            let prefix = if priority { "<22>" } else { "" };
            let mut written = 0;
            for line in stream.by_ref() {
                writeln!(sink, "{prefix}{}", line.text).expect("write the stream");
                written += 1;
            }
            sink.flush().expect("write the stream");
            eprintln!(
                "{}",
                serde_json::json!({ "lines": written, "messages": stream.messages(), "fleets": fleets })
            );
        }
    }
}
