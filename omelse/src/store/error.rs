//! What can go wrong in the store.

/// An error of the store; database errors carry PostgreSQL's message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
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

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
