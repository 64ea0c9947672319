//! Content-filter re-injection, counted once: the definitions are omelse's, shared with the
//! rollups so that the dashboards' totals agree with the report.

pub use omelse::store::dedup::{forwarded, handoff, reinjected};
