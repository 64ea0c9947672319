//! Events to per-message state: smtpd sessions by pid, messages by queue id (with reuse of short
//! ids), and the links between hops. Owns the open-message state; emits table rows.

use crate::parse::ParsedLine;
use crate::store::Batch;

/// The correlator: one per pipeline, single-threaded.
#[derive(Default)]
pub struct Correlator {}

impl Correlator {
    pub fn new() -> Self {
        Correlator::default()
    }

    /// Takes one parsed line: records its event row and updates state.
    pub fn ingest(&mut self, _line: &ParsedLine<'_>, _line_key: i64, _batch: &mut Batch) {}

    /// Appends snapshots of every message, recipient and session touched since the last flush.
    pub fn flush(&mut self, _batch: &mut Batch) {}
}
