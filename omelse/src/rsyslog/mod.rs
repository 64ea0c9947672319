//! omelse as rsyslog loads it: the native output module (`omelse.so`). `entry` is the C boundary
//! (the only `unsafe` code), `abi` declares rsyslog's types, `config` reads the action's
//! parameters and `sink` hands batches to the database through the shared pipeline, keeping those it could not
//! write in the `spool`.

mod abi;
mod config;
mod entry;
pub mod sink;
mod spool;

pub use config::{ActionConfig, ConfigError, HostnameSource, ParamValue, ProgramFilter, PARAMS};
