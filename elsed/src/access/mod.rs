//! The access model: who may see and do what. Accounts and groups as stored ([`accounts`]), the
//! caller of a request and their [`Scope`] as SQL conditions, the audit log every active
//! operation writes ([`audit`]), and the `elsed user` / `elsed group` commands ([`cli`]).
//!
//! The web application authenticates callers and serves this model; `elsed setup`, the
//! scheduled reports and the SNMP queue actions use it without the web application.

pub mod accounts;
pub mod audit;
mod caller;
pub mod cli;
mod scope;

pub use caller::{Caller, Role, Session};
pub use scope::{reject_sender_vouched, sender_vouched, GroupScope, Scope};

#[cfg(test)]
pub(crate) use scope::tests as scope_tests;
