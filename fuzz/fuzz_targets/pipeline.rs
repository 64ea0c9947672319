//! Lines through the whole pipeline (parse, correlate, batch rows): no panic, every line kept.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omelse::correlate::Correlator;
use omelse::ingest::Pipeline;
use omelse::parse::{Clock, Timestamp};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let clock = Clock::new(jiff::tz::TimeZone::UTC, Timestamp(1_700_000_000_000_000));
    let mut pipeline = Pipeline::new(clock, Correlator::new());
    let mut lines = 0;
    for line in text.split('\n') {
        pipeline.push_line(line);
        lines += 1;
    }
    let batch = pipeline.take_batch();
    assert_eq!(batch.events.len(), lines, "every line becomes exactly one event row");
});
