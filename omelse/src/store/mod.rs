//! The only place that speaks SQL: schema migrations, batch writes, open-state loading, retention.

mod batch;

pub use batch::*;
