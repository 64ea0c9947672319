//! omelse as rsyslog loads it: the native output module (`omelse.so`), in rooms by job:
//!
//! - `entry`: the C boundary, `modInit` and the entry points rsyslogd calls (the only `unsafe`
//!   code of the crate); `abi` declares rsyslog's types.
//! - `config`: the action's parameters; `template`: omelse's template and its one reader;
//!   `identity`: which server names a line may carry, by the input it came in by.
//! - `sink`: the handoff from rsyslog's worker threads to the action's commit thread ([`Sink`]);
//!   `turns`: the workers' batches back in the order rsyslog dequeued them.
//! - `database`: the commit thread's connection, the pipeline resumed from the database, and what
//!   is not written yet: the `spool` file (omelse's own queue on disk), or without it the lines
//!   of a failed batch `retained` in memory; `in_flight`: a batch's write while the next is
//!   parsed.
//! - `upkeep`: the commit thread's periodic chores (counters, rollups, the fleet's roles).

mod abi;
mod config;
mod database;
mod entry;
mod heap;
mod identity;
mod in_flight;
mod retained;
mod sink;
mod spool;
mod template;
mod turns;
mod upkeep;

pub use config::{
    ActionConfig, ConfigError, HostBinding, HostnameSource, ParamValue, ProgramFilter, DEFAULT_MAX_OPEN, PARAMS,
};
pub use sink::{Counters, Logger, Outcome, Severity, Sink};
