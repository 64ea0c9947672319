//! ELSE's heart, shared by the rsyslog output module and `elsed`: one parser, one correlator, one
//! writer, so a log imported later and the live stream give identical records.
//!
//! - [`parse`]: a Postfix syslog line to a typed [`parse::Event`], without regex or allocation.
//! - [`correlate`]: events to per-message state (sessions, queue ids, hops) and table rows.
//! - [`store`]: the only place that speaks SQL: migrations, batch writes, retention.
//! - [`ingest`]: the one entry both doors use: lines in, [`store::Batch`]es out, and the
//!   correlator resumed from the database after a restart.
//! - [`keys`]: the stable hashes that name lines, lives and sessions.

// `unsafe` only where rsyslog's C calls come in (`rsyslog/entry.rs` allows it, and says why each
// block is sound); nowhere else in the crate.
#![deny(unsafe_code)]

pub mod correlate;
pub mod ingest;
pub mod keys;
pub mod parse;
pub mod rsyslog;
pub mod store;
