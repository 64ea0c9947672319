//! ELSE's daemon and command line as a library: every subcommand's work lives here, the binary
//! (`main.rs`) only reads the command line and hands over.

#![deny(unsafe_code)]

pub mod access;
pub mod alerts;
pub mod allow_list;
pub mod check_config;
pub mod config;
pub mod db;
mod geo;
pub mod greylist;
pub mod import;
pub mod maintain;
mod message_query;
pub mod migrate;
pub mod ndr;
pub mod parse;
pub mod per_key;
mod recipient_lookup;
pub mod replica;
pub mod report;
pub(crate) mod schedule;
pub mod search;
pub mod secret_file;
mod settings;
pub mod setup;
pub mod shutdown;
pub mod snmp;
mod sql;
pub mod status;
#[cfg(test)]
mod test_fixtures;
mod time;
pub mod web;

pub use settings::Settings;
