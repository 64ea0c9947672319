//! What can go wrong in the store.

/// An error of the store; database errors carry PostgreSQL's message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The whole chain of causes is in the message (`db error: FATAL: Peer authentication
    /// failed …`, `error connecting to server: No such file or directory`), since most callers
    /// print only the message; hence no `source()` either, which would say it twice.
    #[error("database: {}", with_causes(.0))]
    Db(tokio_postgres::Error),
    #[error("database schema version {database} is newer than this binary ({binary}); upgrade ELSE")]
    SchemaTooNew { database: i32, binary: i32 },
    #[error("TLS: {0}")]
    Tls(String),
}

impl StoreError {
    /// True when retrying later may succeed (connection lost, server shutting down, deadlock,
    /// serialization failure): the caller should keep the batch and try again.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Db(e) => {
                e.is_closed()
                    || e.code().is_some_and(|c| {
                        let code = c.code();
                        code.starts_with("08")
                            || code.starts_with("57P")
                            || code == "40001"
                            || code == "40P01"
                            || code.starts_with("53")
                    })
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
            }
            StoreError::SchemaTooNew { .. } | StoreError::Tls(_) => false,
        }
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> StoreError {
        StoreError::Db(error)
    }
}

/// An error and its sources, joined with `: ` (tokio_postgres's own message is only the kind).
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
