//! Why a query failed, sorted by who can act on it: the caller (a limit, an invalid argument),
//! the operator (storage or metastore unavailable, a timeout) or us (corrupt data).

use block::BlockError;
use metastore::MetastoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum QueryError {
    /// Something the query asked for is not valid (answered 400).
    #[error("{0}")]
    InvalidArgument(String),
    /// The query needs more than a limit allows (answered 400, naming the limit).
    #[error("{0}")]
    LimitExceeded(String),
    /// Object storage or the metastore did not answer (answered 503): retrying may help.
    #[error("{0}")]
    Unavailable(String),
    /// The query ran longer than its time limit (answered 504).
    #[error(
        "request timed out, decrease the duration of the request or add more label matchers (prefer exact match over regex match) to reduce the amount of data processed"
    )]
    Timeout,
    /// The caller went away.
    #[error("the query was canceled")]
    Canceled,
    /// Stored data could not be read (answered 500).
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    pub(crate) fn block(block: ulid::Ulid, error: BlockError) -> QueryError {
        match error {
            BlockError::Storage(storage::object_store::Error::NotFound { .. }) => {
                QueryError::Internal(format!("block {block}: the object is missing"))
            }
            BlockError::Storage(e) => {
                QueryError::Unavailable(format!("object storage is unavailable: {e}"))
            }
            other => QueryError::Internal(format!("block {block}: {other}")),
        }
    }
}

impl From<MetastoreError> for QueryError {
    fn from(error: MetastoreError) -> QueryError {
        match error {
            MetastoreError::Sqlite(_)
            | MetastoreError::Postgres(_)
            | MetastoreError::Pool(_)
            | MetastoreError::Task(_) => {
                QueryError::Unavailable(format!("the metastore is unavailable: {error}"))
            }
            other => QueryError::Internal(format!("metastore: {other}")),
        }
    }
}
