//! How the parser and correlator scale from 1 to 100 million lines (`scripts/bench-scale.sh`,
//! `make bench`): the real MX log of `../shared/corpora/postfix-logsums` (69,861 lines over three
//! days) repeated as a fleet of ten hosts (`helga0` … `helga9`, their lines interleaved in time
//! order) over successive three-day blocks of log time, until the asked number of lines. So 100
//! million lines are 143 blocks: 14 months of a ten-server fleet, never the same queue id twice
//! at once, and the correlator's forgetting (closed lives after 10 minutes, open ones after 10
//! days of log time) works as it would in production.
//!
//! ```text
//! cargo bench -p omelse --bench scale -- pipeline 100000000   # in memory: lines/s, peak RSS
//! cargo bench -p omelse --bench scale -- write 10000000 FILE  # the same lines, for elsed import
//! cargo bench -p omelse --bench scale -- open 100000          # correlator memory, open messages
//! cargo bench -p omelse --bench scale -- closed 100000        # … the same count closed
//! ```
//!
//! `pipeline` times only the pipeline (parse + correlate + table rows, the batch dropped every
//! 20,000 lines as the writer would hand it to PostgreSQL), not the making of the lines.

use std::io::{BufWriter, Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use else_tests::bench::{memory_kib, message_lines, Ending};
use jiff::civil::Date;
use omelse::parse::{Clock, Timestamp};

/// Counts the bytes the process holds on the heap, so that `open`/`closed` can say how much of
/// the resident set is the correlator's own data and how much the allocator's slack.
struct Counting;

static HEAP_BYTES: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; only a counter is added.
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        HEAP_BYTES.fetch_add(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: the caller's layout, passed on as `GlobalAlloc::alloc` requires.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        HEAP_BYTES.fetch_sub(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        HEAP_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            std::sync::atomic::Ordering::Relaxed,
        );
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn heap_bytes() -> isize {
    HEAP_BYTES.load(std::sync::atomic::Ordering::Relaxed)
}

/// Hosts of the synthetic fleet.
const HOSTS: usize = 10;
/// Lines per pipeline batch (the writer's transaction size).
const CHUNK: usize = 20_000;

/// One corpus line, cut where a copy changes it: its date, the rest of its timestamp, its text
/// after the host name.
struct Template {
    day: i64,
    time: String,
    rest: String,
}

struct Corpus {
    first: Date,
    days: i64,
    lines: Vec<Template>,
}

fn corpus() -> Corpus {
    let Some(dir) = else_tests::corpora::dir_or_skip() else {
        std::process::exit(0);
    };
    let file = std::fs::File::open(dir.join("postfix-logsums/mail.log.gz")).expect("the real MX log");
    let mut bytes = Vec::new();
    flate2::read::MultiGzDecoder::new(file)
        .read_to_end(&mut bytes)
        .expect("read the corpus");
    let text = String::from_utf8_lossy(&bytes);
    let mut lines = Vec::new();
    let mut first: Option<Date> = None;
    for line in text.lines() {
        // `2023-03-14T00:00:31.185246+01:00 helga postfix/smtpd[297535]: …`
        let mut parts = line.splitn(3, ' ');
        let (Some(stamp), Some(_host), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let Some(date) = stamp.get(..10).and_then(|d| d.parse::<Date>().ok()) else {
            continue;
        };
        let first = *first.get_or_insert(date);
        let day = (date - first).get_days() as i64;
        lines.push(Template {
            day,
            time: stamp[10..].to_owned(),
            rest: rest.to_owned(),
        });
    }
    let first = first.expect("an empty corpus");
    let days = lines.iter().map(|l| l.day).max().unwrap_or(0) + 1;
    Corpus { first, days, lines }
}

/// The synthetic log, line by line, written into a reused buffer.
struct Fleet<'c> {
    corpus: &'c Corpus,
    block: i64,
    index: usize,
    host: usize,
    dates: Vec<String>,
}

impl<'c> Fleet<'c> {
    fn new(corpus: &'c Corpus) -> Self {
        let mut fleet = Fleet {
            corpus,
            block: 0,
            index: 0,
            host: 0,
            dates: Vec::new(),
        };
        fleet.dates_of_block();
        fleet
    }

    fn dates_of_block(&mut self) {
        let start = self.block * self.corpus.days;
        self.dates = (0..self.corpus.days)
            .map(|d| {
                let date = self.corpus.first + jiff::Span::new().days(start + d);
                date.to_string()
            })
            .collect();
    }

    fn next_into(&mut self, out: &mut String) {
        let line = &self.corpus.lines[self.index];
        out.clear();
        out.push_str(&self.dates[line.day as usize]);
        out.push_str(&line.time);
        out.push_str(" helga");
        out.push_str(&self.host.to_string());
        out.push(' ');
        out.push_str(&line.rest);
        self.host += 1;
        if self.host == HOSTS {
            self.host = 0;
            self.index += 1;
            if self.index == self.corpus.lines.len() {
                self.index = 0;
                self.block += 1;
                self.dates_of_block();
            }
        }
    }
}

/// CPU time of this thread: on a machine shared with other jobs, lines per CPU-second is the
/// figure that does not depend on how much of the core the others left.
#[allow(unsafe_code)] // libc has no safe clock_gettime
fn thread_cpu() -> Duration {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn pipeline(corpus: &Corpus, total: u64) {
    let (base, _) = memory_kib("self");
    let clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp::now());
    let mut pipeline = omelse::ingest::Pipeline::new(clock, omelse::correlate::Correlator::new());
    let mut fleet = Fleet::new(corpus);
    let mut chunk: Vec<String> = vec![String::new(); CHUNK];
    let (mut timed, mut cpu) = (Duration::ZERO, Duration::ZERO);
    let mut done = 0u64;
    let mut rows = 0usize;
    let report_every = (total / 10).max(CHUNK as u64);
    let mut next_report = report_every;
    let (mut segment_lines, mut segment_time, mut segment_cpu) = (0u64, Duration::ZERO, Duration::ZERO);
    while done < total {
        let n = (total - done).min(CHUNK as u64) as usize;
        for line in &mut chunk[..n] {
            fleet.next_into(line);
        }
        let (started, started_cpu) = (Instant::now(), thread_cpu());
        for line in &chunk[..n] {
            pipeline.push_line(line);
        }
        rows += pipeline.take_batch().events.len();
        let spent = started.elapsed();
        timed += spent;
        let spent_cpu = thread_cpu() - started_cpu;
        cpu += spent_cpu;
        segment_cpu += spent_cpu;
        segment_time += spent;
        segment_lines += n as u64;
        done += n as u64;
        if done >= next_report || done == total {
            next_report += report_every;
            let (rss, _) = memory_kib("self");
            let correlator = pipeline.correlator_mut();
            println!(
                "scale-pipeline: at {done} lines: since the last report {:.0} lines/s, {:.0} lines/CPU-s; RSS {:.1} MiB, open messages {}, open sessions {}",
                segment_lines as f64 / segment_time.as_secs_f64(),
                segment_lines as f64 / segment_cpu.as_secs_f64(),
                rss as f64 / 1024.0,
                correlator.open_messages(),
                correlator.open_sessions()
            );
            (segment_lines, segment_time, segment_cpu) = (0, Duration::ZERO, Duration::ZERO);
        }
    }
    let (_, peak) = memory_kib("self");
    let seconds = timed.as_secs_f64();
    println!(
        "scale-pipeline: lines={total} event_rows={rows} seconds={seconds:.2} lines_per_s={:.0} lines_per_cpu_s={:.0} peak_rss_kib={peak} base_rss_kib={base} log_days={:.0}",
        total as f64 / seconds,
        total as f64 / cpu.as_secs_f64(),
        (fleet.block as f64 + fleet.index as f64 / corpus.lines.len() as f64) * corpus.days as f64
    );
}

/// The correlator alone holding `messages` open messages, beside the same count closed (the lines
/// of the rsyslogd memory benchmark, `tests/benches/omelse_memory.rs`): what part of rsyslogd's
/// growth is the correlator's own state. One ending per process, so that neither run reuses the
/// memory the other freed.
fn held(messages: usize, ending: Ending) {
    {
        let lines = message_lines(messages, ending);
        let (before, _) = memory_kib("self");
        let heap_before = heap_bytes();
        let clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp::now());
        let mut pipeline = omelse::ingest::Pipeline::new(clock, omelse::correlate::Correlator::new());
        for chunk in lines.chunks(CHUNK) {
            for line in chunk {
                pipeline.push_line(line);
            }
            drop(pipeline.take_batch());
        }
        let (after, _) = memory_kib("self");
        let heap = heap_bytes() - heap_before;
        let correlator = pipeline.correlator_mut();
        println!(
            "scale-open: {ending:?}: {} open messages, {} open sessions, RSS {:.1} MiB more than before the pipeline, {:.0} bytes per message; heap in use {:.1} MiB more, {:.0} bytes per message",
            correlator.open_messages(),
            correlator.open_sessions(),
            (after as f64 - before as f64) / 1024.0,
            (after as f64 - before as f64) * 1024.0 / messages as f64,
            heap as f64 / 1048576.0,
            heap as f64 / messages as f64
        );
        println!(
            "scale-open: inline sizes before their strings: MessageRow {} bytes, RecipientRow {} bytes",
            std::mem::size_of::<omelse::store::MessageRow>(),
            std::mem::size_of::<omelse::store::RecipientRow>()
        );
    }
}

fn write(corpus: &Corpus, total: u64, path: &Path) {
    let mut fleet = Fleet::new(corpus);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("create the output file"));
    let mut line = String::new();
    for _ in 0..total {
        fleet.next_into(&mut line);
        out.write_all(line.as_bytes()).expect("write");
        out.write_all(b"\n").expect("write");
    }
    out.flush().expect("write");
    println!(
        "scale-write: {total} lines, {HOSTS} hosts, {} blocks of {} days, into {}",
        fleet.block + 1,
        corpus.days,
        path.display()
    );
}

fn main() {
    // cargo bench appends `--bench`; `cargo test --benches` asks for `--list`.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let count = |i: usize| -> u64 {
        args.get(i)
            .and_then(|v| v.replace('_', "").parse().ok())
            .unwrap_or_else(|| usage())
    };
    match args.first().map(String::as_str) {
        Some("pipeline") => pipeline(&corpus(), count(1)),
        Some("open") => held(count(1) as usize, Ending::Open),
        Some("closed") => held(count(1) as usize, Ending::Closed),
        Some("write") => match args.get(2) {
            Some(path) => write(&corpus(), count(1), Path::new(path)),
            None => usage(),
        },
        // `cargo bench -p omelse` runs every bench without arguments: nothing to do here.
        None => eprintln!("scale: no mode given; usage: cargo bench -p omelse --bench scale -- pipeline LINES"),
        _ => usage(),
    }
}

fn usage() -> ! {
    eprintln!("usage: cargo bench -p omelse --bench scale -- pipeline LINES | write LINES FILE | open MESSAGES | closed MESSAGES");
    std::process::exit(2)
}
