//! `elsed import`: existing log files into the database, through the same pipeline as the live
//! stream (so a file imported later and the rsyslog stream give identical records).
//!
//! Files are read oldest first, on a thread of their own that parses and correlates; every
//! `batch_lines` lines it hands a batch over a bounded channel to the writer, which commits it
//! while the next batch is parsed. Lines keep a content key, so importing a file twice adds nothing.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use flate2::read::MultiGzDecoder;
use jiff::tz::TimeZone;
use omelse::correlate::{Correlator, CorrelatorConfig};
use omelse::ingest::{self, Pipeline, Stats};
use omelse::parse::{self, Clock, Timestamp};
use omelse::store::{self, Batch, WriteStats};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::{db, Settings};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Host name to give every line, instead of the one each line carries
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Time zone of RFC 3164 timestamps [default: `timezone` of the config file, else the machine's]
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,
    /// Reference time for the year of RFC 3164 timestamps (RFC 3339) [default: each file's
    /// modification time, now for standard input]
    #[arg(long, value_name = "TIME")]
    year_reference: Option<String>,
    /// Lines per transaction [default: import.batch_lines of the config file, else 20000]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    batch_lines: Option<u64>,
    /// Print the summary as one JSON object
    #[arg(long)]
    json: bool,
    /// Import lines older than `retention.days` too (the next `elsed maintain` drops them);
    /// without it such lines stop the import before their batch is written
    #[arg(long)]
    force: bool,
    /// Log files, plain or gzip-compressed, or - for standard input; read oldest first
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
}

/// Where lines come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    File(PathBuf),
    Stdin,
}

impl Source {
    fn name(&self) -> String {
        match self {
            Source::File(path) => path.display().to_string(),
            Source::Stdin => "-".to_owned(),
        }
    }

    /// A reader of the source's lines; gzip is recognised by its magic number, not the name.
    fn open(&self) -> std::io::Result<Box<dyn BufRead + Send>> {
        let raw: Box<dyn Read + Send> = match self {
            Source::File(path) => Box::new(File::open(path)?),
            Source::Stdin => Box::new(std::io::stdin()),
        };
        let mut reader = BufReader::with_capacity(1 << 20, raw);
        if reader.fill_buf()?.starts_with(&[0x1f, 0x8b]) {
            Ok(Box::new(BufReader::with_capacity(1 << 20, MultiGzDecoder::new(reader))))
        } else {
            Ok(Box::new(reader))
        }
    }

    /// The reference for the year of RFC 3164 lines: when the file was last written.
    fn modified(&self) -> Option<Timestamp> {
        let Source::File(path) = self else {
            return None;
        };
        let modified = std::fs::metadata(path).ok()?.modified().ok()?;
        let micros = jiff::Timestamp::try_from(modified).ok()?.as_microsecond();
        Some(Timestamp(micros))
    }
}

/// What an import did; printed as text or, with `--json`, as one object.
#[derive(Debug, Serialize)]
struct Summary {
    files: Vec<FileSummary>,
    lines: u64,
    events_by_kind: BTreeMap<&'static str, u64>,
    /// Lines without a readable syslog envelope (stored raw).
    unparsed_lines: u64,
    /// Lines of Postfix programs that no parser understood (stored raw), by program.
    unknown_lines: u64,
    unknown_by_program: BTreeMap<String, u64>,
    /// Lines whose parsing or correlating panicked (a bug, to report): stored raw as `unknown`.
    panicked_lines: u64,
    /// Distinct messages (lives of a queue id) the lines touched.
    messages: u64,
    batches: u64,
    /// Rows this import added or changed; zero when the same lines were imported before.
    written: Written,
    duration_seconds: f64,
    lines_per_second: f64,
    /// Of `duration_seconds`, the refresh of the dashboards' rollups of every hour the lines
    /// touched, after the last line was written (the live path leaves it to `elsed serve`).
    rollups_seconds: f64,
    /// Files that could not be read to the end.
    errors: Vec<String>,
    /// Lines older than `retention.days` ([`Retention`]): the next `elsed maintain` drops them.
    retention: Retention,
}

/// The lines of an import that retention would drop.
#[derive(Debug, Serialize)]
struct Retention {
    days: u32,
    /// The first instant `retention.days` keeps today.
    #[serde(skip)]
    cutoff: Timestamp,
    /// Lines logged before it.
    older_lines: u64,
}

impl Retention {
    /// Why an import without `--force` stops at a batch holding `older` such lines, the first
    /// logged at `first`.
    fn refusal(&self, older: usize, first: Timestamp, batches_written: u64) -> String {
        let written = match batches_written {
            0 => "nothing was written".to_owned(),
            n => format!("the {n} batch(es) before it are committed"),
        };
        format!(
            "import refused: {older} line(s) from {} on are older than retention.days ({} days, before {}), \
             and the next `elsed maintain` would drop them ({written}). Raise retention.days to keep \
             them, or pass --force to import them anyway",
            first.to_jiff().strftime("%Y-%m-%d %H:%M:%S UTC"),
            self.days,
            self.cutoff.to_jiff().strftime("%Y-%m-%d %H:%M UTC")
        )
    }

    fn warning(&self) -> Option<String> {
        (self.older_lines > 0).then(|| {
            format!(
                "warning: {} line(s) are older than retention.days ({} days, before {}): \
                 the next `elsed maintain` drops them (raise retention.days first to keep them)",
                self.older_lines,
                self.days,
                self.cutoff.to_jiff().strftime("%Y-%m-%d %H:%M UTC")
            )
        })
    }
}

#[derive(Debug, Serialize)]
struct FileSummary {
    name: String,
    lines: u64,
}

#[derive(Debug, Default, Serialize)]
struct Written {
    events: u64,
    messages: u64,
    recipients: u64,
    deliveries: u64,
    rejects: u64,
    sessions: u64,
    links: u64,
    new_servers: u64,
}

impl Written {
    fn add(&mut self, stats: &WriteStats) {
        self.events += stats.events;
        self.messages += stats.messages;
        self.recipients += stats.recipients;
        self.deliveries += stats.deliveries;
        self.rejects += stats.rejects;
        self.sessions += stats.sessions;
        self.links += stats.links;
        self.new_servers += stats.new_servers;
    }
}

/// How long the import took, and its rollup refresh at the end.
struct Timing {
    elapsed: Duration,
    rollups: Duration,
}

/// What the reading thread hands back when it is done.
struct ReadOutcome {
    stats: Stats,
    files: Vec<FileSummary>,
    errors: Vec<String>,
}

pub async fn run(args: ImportArgs, settings: &Settings) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let zone = settings.timezone(args.timezone.as_deref())?;
    let year_reference = match &args.year_reference {
        Some(text) => Some(crate::time::parse_time(text, &zone)?),
        None => None,
    };
    let batch_lines = args
        .batch_lines
        .map_or(settings.config.import.batch_lines, |n| n as usize);
    let sources = order_sources(&args.files, &zone, year_reference)?;

    let mut client = db::connect(&settings.database()?).await?;
    db::migrate(&mut client).await?;
    db::sync_servers(&client, &settings.config.servers).await?;

    // The story resumes at the earliest line of the files (messages still open then are restored).
    let first_line = sources
        .iter()
        .filter_map(|(_, first)| *first)
        .min()
        .or(year_reference)
        .unwrap_or_else(Timestamp::now);
    let correlator = correlator(&client, settings, first_line).await?;
    let sources: Vec<Source> = sources.into_iter().map(|(source, _)| source).collect();
    let pipeline =
        Pipeline::new(Clock::new(zone.clone(), Timestamp::now()), correlator).with_host_override(args.host.clone());
    // Two batches in flight at most: one being written, one ready; parsing goes on meanwhile.
    let (batches, mut received) = mpsc::channel::<Batch>(2);
    let reader = std::thread::Builder::new()
        .name("elsed-import".into())
        .spawn(move || read_all(&sources, pipeline, &zone, year_reference, batch_lines, &batches))?;

    let mut writer = store::Writer::new();
    let mut written = Written::default();
    let mut messages = HashSet::new();
    let mut batch_count = 0u64;
    let mut failure = None;
    let mut refusal = None;
    let days = settings.config.retention.days;
    let mut retention = Retention {
        days,
        cutoff: store::retention_cutoff(days, Timestamp::now()),
        older_lines: 0,
    };
    while let Some(batch) = received.recv().await {
        messages.extend(batch.messages.iter().map(|m| m.uid));
        let older: Vec<Timestamp> = batch
            .events
            .iter()
            .map(|e| e.time)
            .filter(|&time| time < retention.cutoff)
            .collect();
        if !older.is_empty() && !args.force {
            let first = older.iter().copied().min().unwrap_or(retention.cutoff);
            refusal = Some(retention.refusal(older.len(), first, batch_count));
            break;
        }
        retention.older_lines += older.len() as u64;
        match write_with_retries(&mut writer, &mut client, &batch, settings).await {
            Ok(stats) => {
                written.add(&stats);
                batch_count += 1;
                tracing::debug!(batch = batch_count, events = batch.events.len(), "batch written");
            }
            Err(e) => {
                // Dropping the receiver stops the reader at its next batch.
                failure = Some(e);
                break;
            }
        }
    }
    drop(received);
    let outcome = reader
        .join()
        .map_err(|_| anyhow::anyhow!("the reading thread panicked"))?;
    if let Some(refusal) = refusal {
        anyhow::bail!(refusal);
    }
    if let Some(e) = failure {
        return Err(e.context("import stopped: a batch could not be written (the batches before it are committed)"));
    }
    let outcome = outcome?;
    let rollups_started = Instant::now();
    // The rollups of every hour the import touched, on one connection per core (a database on
    // this machine refreshes them in parallel, one server's hours per connection at a time).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let mut connections = vec![client];
    for _ in 1..cores {
        connections.push(db::connect(&settings.database()?).await?);
    }
    store::refresh_rollups_on(&mut connections).await?;

    let elapsed = started.elapsed();
    let timing = Timing {
        elapsed,
        rollups: rollups_started.elapsed(),
    };
    let summary = summarize(outcome, messages.len() as u64, batch_count, written, timing, retention);
    if let Some(warning) = summary.retention.warning() {
        eprintln!("{warning}");
    }
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print!("{}", render(&summary));
    }
    Ok(if summary.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The correlator of an import: the fleet's roles from the configuration (then the database), and the messages and
/// sessions still open in the database, so that a log imported after the one before it (or after
/// the live stream) continues their story.
async fn correlator(
    client: &tokio_postgres::Client,
    settings: &Settings,
    first_line: Timestamp,
) -> anyhow::Result<Correlator> {
    let mut config = CorrelatorConfig::default();
    if let Some(networks) = settings.config.internal_networks().map_err(anyhow::Error::msg)? {
        config.internal_networks = networks;
    }
    for server in &settings.config.servers {
        config.roles.insert(server.name.clone(), server.role());
        for address in &server.addresses {
            config.server_addresses.insert(address.clone(), server.name.clone());
        }
    }
    // Roles an administrator set in the database (web UI) apply to imports too.
    let correlator = ingest::resume(client, config, Some(first_line)).await?;
    tracing::info!(
        messages = correlator.open_messages(),
        sessions = correlator.open_sessions(),
        "open state loaded"
    );
    Ok(correlator)
}

/// Writes one batch; transient errors (connection lost, deadlock) are retried with the same batch,
/// which the store makes harmless, on a new connection when the old one is gone.
async fn write_with_retries(
    writer: &mut store::Writer,
    client: &mut tokio_postgres::Client,
    batch: &Batch,
    settings: &Settings,
) -> anyhow::Result<WriteStats> {
    const ATTEMPTS: u32 = 6;
    let mut attempt = 1;
    loop {
        match writer.write_batch(client, batch).await {
            Ok(stats) => return Ok(stats),
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                tracing::warn!(attempt, error = %e, "batch write failed, retrying");
                tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                attempt += 1;
                if client.is_closed() {
                    match db::connect(&settings.database()?).await {
                        Ok(new) => *client = new,
                        Err(e) => tracing::warn!(error = %e, "reconnecting failed"),
                    }
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// The reading thread: every source in order through the pipeline, a batch every `batch_lines`
/// lines. Stops early when the writer has gone (it failed).
fn read_all(
    sources: &[Source],
    mut pipeline: Pipeline,
    zone: &TimeZone,
    year_reference: Option<Timestamp>,
    batch_lines: usize,
    batches: &mpsc::Sender<Batch>,
) -> anyhow::Result<ReadOutcome> {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut pending = 0usize;
    let mut buffer = Vec::with_capacity(4096);
    'sources: for source in sources {
        let reference = year_reference
            .or_else(|| source.modified())
            .unwrap_or_else(Timestamp::now);
        pipeline.set_clock(Clock::new(zone.clone(), reference));
        let mut lines = 0u64;
        let mut reader = match source.open() {
            Ok(reader) => reader,
            Err(e) => {
                errors.push(format!("{}: {e}", source.name()));
                continue;
            }
        };
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    // A truncated .gz (a rotation in progress): what was read is kept.
                    errors.push(format!("{}: after {lines} lines: {e}", source.name()));
                    break;
                }
            }
            // Invalid UTF-8 is replaced, never refused: the line is still stored.
            pipeline.push_line(&String::from_utf8_lossy(&buffer));
            lines += 1;
            pending += 1;
            if pending >= batch_lines {
                pending = 0;
                if batches.blocking_send(pipeline.take_batch()).is_err() {
                    files.push(FileSummary {
                        name: source.name(),
                        lines,
                    });
                    break 'sources;
                }
            }
        }
        tracing::info!(file = %source.name(), lines, "read");
        files.push(FileSummary {
            name: source.name(),
            lines,
        });
    }
    // The writer may have gone; its error is the one reported.
    let _ = batches.blocking_send(pipeline.take_batch());
    Ok(ReadOutcome {
        stats: pipeline.stats().clone(),
        files,
        errors,
    })
}

/// The sources, oldest first, with the time of their first line when they have one. Files whose first lines carry a time are ordered by it; if one has
/// none, by their rotation (`mail.log.2.gz`, `mail.log.1`, `mail.log`; `mail.log-20240301`
/// before `mail.log`). Standard input comes last.
fn order_sources(
    names: &[String],
    zone: &TimeZone,
    year_reference: Option<Timestamp>,
) -> anyhow::Result<Vec<(Source, Option<Timestamp>)>> {
    let stdin_count = names.iter().filter(|n| *n == "-").count();
    anyhow::ensure!(stdin_count <= 1, "standard input (-) can be read only once");
    let mut files = Vec::new();
    for name in names.iter().filter(|n| *n != "-") {
        let path = PathBuf::from(name);
        anyhow::ensure!(path.is_file(), "{name}: not a readable file");
        files.push(Source::File(path));
    }
    let first_times: Vec<Option<Timestamp>> = files
        .iter()
        .map(|source| {
            let reference = year_reference
                .or_else(|| source.modified())
                .unwrap_or_else(Timestamp::now);
            first_time(source, &mut Clock::new(zone.clone(), reference))
        })
        .collect();
    let mut keyed: Vec<_> = files.into_iter().zip(first_times).collect();
    if keyed.iter().all(|(_, time)| time.is_some()) {
        keyed.sort_by_key(|(source, time)| (*time, rotation_key(source)));
    } else {
        keyed.sort_by_key(|(source, _)| rotation_key(source));
    }
    if stdin_count == 1 {
        keyed.push((Source::Stdin, None));
    }
    Ok(keyed)
}

/// The time of the first of a file's first lines that has one.
fn first_time(source: &Source, clock: &mut Clock) -> Option<Timestamp> {
    let reader = source.open().ok()?;
    reader
        .split(b'\n')
        .take(100)
        .map_while(Result::ok)
        .find_map(|bytes| parse::split_line(&String::from_utf8_lossy(&bytes), clock).map(|line| line.time))
}

/// Sort key by name: base name, then older rotations first, the live file last.
fn rotation_key(source: &Source) -> (String, u8, i64) {
    let Source::File(path) = source else {
        return (String::new(), 2, 0);
    };
    let name = path.to_string_lossy();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if let Some((base, number)) = name.rsplit_once('.') {
        if let Ok(number) = number.parse::<i64>() {
            // mail.log.2 is older than mail.log.1.
            return (base.to_owned(), 0, -number);
        }
    }
    if let Some((base, date)) = name.rsplit_once('-') {
        if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) {
            // dateext: mail.log-20240301 is older than mail.log-20240308.
            return (base.to_owned(), 0, date.parse().unwrap_or(0));
        }
    }
    (name.to_owned(), 1, 0)
}

fn summarize(
    outcome: ReadOutcome,
    messages: u64,
    batches: u64,
    written: Written,
    timing: Timing,
    retention: Retention,
) -> Summary {
    let stats = outcome.stats;
    let seconds = timing.elapsed.as_secs_f64();
    Summary {
        files: outcome.files,
        lines: stats.lines,
        events_by_kind: stats.events_by_kind,
        unparsed_lines: stats.unparsed,
        unknown_lines: stats.unknown_by_program.values().sum(),
        unknown_by_program: stats.unknown_by_program,
        panicked_lines: stats.panicked,
        messages,
        batches,
        written,
        duration_seconds: seconds,
        lines_per_second: if seconds > 0.0 {
            stats.lines as f64 / seconds
        } else {
            0.0
        },
        rollups_seconds: timing.rollups.as_secs_f64(),
        errors: outcome.errors,
        retention,
    }
}

/// The summary as a person reads it.
fn render(summary: &Summary) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "imported {} lines from {} file(s) in {:.1} s ({:.0} lines/s; the dashboards' rollups {:.1} s of it)",
        summary.lines,
        summary.files.len(),
        summary.duration_seconds,
        summary.lines_per_second,
        summary.rollups_seconds
    );
    for file in &summary.files {
        let _ = writeln!(out, "  {:>10}  {}", file.lines, file.name);
    }
    let _ = writeln!(out, "messages: {}", summary.messages);
    let _ = writeln!(out, "events by kind:");
    let mut kinds: Vec<_> = summary.events_by_kind.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (kind, count) in kinds {
        let _ = writeln!(out, "  {count:>10}  {kind}");
    }
    let _ = writeln!(out, "unparsed lines: {}", summary.unparsed_lines);
    let _ = writeln!(out, "unknown lines: {}", summary.unknown_lines);
    for (program, count) in &summary.unknown_by_program {
        let _ = writeln!(out, "  {count:>10}  {program}");
    }
    if summary.panicked_lines > 0 {
        let _ = writeln!(
            out,
            "lines that made the parser panic (a bug; stored raw, please report): {}",
            summary.panicked_lines
        );
    }
    let w = &summary.written;
    let _ = writeln!(
        out,
        "written: {} events, {} messages, {} recipients, {} deliveries, {} rejects, {} sessions, {} links, \
         {} new servers in {} batch(es)",
        w.events,
        w.messages,
        w.recipients,
        w.deliveries,
        w.rejects,
        w.sessions,
        w.links,
        w.new_servers,
        summary.batches
    );
    for error in &summary.errors {
        let _ = writeln!(out, "error: {error}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str) -> Source {
        Source::File(PathBuf::from(name))
    }

    #[test]
    fn rotated_files_sort_oldest_first() {
        let mut sources = [
            file("/var/log/mail.log"),
            file("/var/log/mail.log.1"),
            file("/var/log/mail.log.10.gz"),
            file("/var/log/mail.log.2.gz"),
        ];
        sources.sort_by_key(rotation_key);
        let names: Vec<String> = sources.iter().map(Source::name).collect();
        assert_eq!(
            names,
            [
                "/var/log/mail.log.10.gz",
                "/var/log/mail.log.2.gz",
                "/var/log/mail.log.1",
                "/var/log/mail.log"
            ]
        );
        let mut dated = [file("maillog"), file("maillog-20240308"), file("maillog-20240301.gz")];
        dated.sort_by_key(rotation_key);
        let names: Vec<String> = dated.iter().map(Source::name).collect();
        assert_eq!(names, ["maillog-20240301.gz", "maillog-20240308", "maillog"]);
    }

    #[test]
    fn files_with_times_sort_by_their_first_line_and_gzip_is_read() {
        let dir = std::env::temp_dir().join(format!("elsed-import-order-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let newer = dir.join("b.log");
        let older = dir.join("a-but-newer-name.log.gz");
        std::fs::write(&newer, "2024-03-02T10:00:00Z mx postfix/qmgr[1]: 4F3A21C0: removed\n").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(
            &mut gz,
            b"garbage first\n2024-03-01T10:00:00Z mx postfix/qmgr[1]: 4F3A21C1: removed\n",
        )
        .unwrap();
        std::fs::write(&older, gz.finish().unwrap()).unwrap();
        let names = vec![newer.display().to_string(), "-".to_owned(), older.display().to_string()];
        let sources: Vec<Source> = order_sources(&names, &TimeZone::UTC, None)
            .unwrap()
            .into_iter()
            .map(|(source, _)| source)
            .collect();
        assert_eq!(sources, [Source::File(older), Source::File(newer), Source::Stdin]);
        assert!(order_sources(&["-".into(), "-".into()], &TimeZone::UTC, None).is_err());
        assert!(order_sources(&[dir.join("missing").display().to_string()], &TimeZone::UTC, None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
