//! Parse-only throughput on a real Postfix log (`make bench`): lines per second on one core.
//!
//! Reads `../shared/corpora/postfix-logsums/mail.log.gz` (69,861 lines of a real MX); without it,
//! the project's own fixture under tests/fixtures.

use std::io::Read;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use omelse::parse::{parse_line, Clock, Timestamp};

fn corpus() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let real = root.join("../shared/corpora/postfix-logsums/mail.log.gz");
    let text = if real.exists() {
        // Real logs carry some bytes that are not UTF-8: read them the way the pipeline does.
        let mut bytes = Vec::new();
        flate2::read::MultiGzDecoder::new(std::fs::File::open(real).unwrap())
            .read_to_end(&mut bytes)
            .unwrap();
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        eprintln!("../shared/corpora missing: benchmarking the project's own fixture");
        std::fs::read_to_string(root.join("tests/fixtures/mail.log")).unwrap_or_default()
    };
    text.lines().map(str::to_owned).collect()
}

fn parse_throughput(c: &mut Criterion) {
    let lines = corpus();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.bench_function("real_log_lines", |b| {
        b.iter(|| {
            let mut clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp::now());
            let mut parsed = 0usize;
            for line in &lines {
                if let Some(p) = parse_line(line, &mut clock) {
                    parsed += p.event.queue_id.map_or(1, str::len);
                }
            }
            parsed
        })
    });
    group.finish();
}

/// Parse + correlate + table rows (no database): the work the commit thread does per line.
fn pipeline_throughput(c: &mut Criterion) {
    let lines = corpus();
    let mut group = c.benchmark_group("pipeline");
    group.throughput(Throughput::Elements(lines.len() as u64));
    group.sample_size(10);
    group.bench_function("real_log_lines", |b| {
        b.iter(|| {
            let clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp::now());
            let mut pipeline = omelse::ingest::Pipeline::new(clock, omelse::correlate::Correlator::new());
            let mut rows = 0;
            for chunk in lines.chunks(20_000) {
                for line in chunk {
                    pipeline.push_line(line);
                }
                rows += pipeline.take_batch().events.len();
            }
            rows
        })
    });
    group.finish();
}

criterion_group!(benches, parse_throughput, pipeline_throughput);
criterion_main!(benches);
