//! What can go wrong reading a recording. Every error names what was wrong and where; the
//! server answers all of them with 422.

/// A recording (or its labels) that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JfrError {
    #[error("not a JFR recording: a chunk must start with \"FLR\\0\"")]
    NotJfr,
    #[error("unsupported JFR version {major}.{minor} (versions 1 and 2 are read)")]
    UnsupportedVersion { major: u16, minor: u16 },
    #[error("truncated JFR: {len} bytes needed at offset {at}")]
    Truncated { at: usize, len: usize },
    #[error("corrupt JFR: {0}")]
    Corrupt(String),
    #[error("invalid JFR labels: {0}")]
    Labels(String),
    #[error("JFR recording too large: {0}")]
    TooLarge(String),
}

impl JfrError {
    pub(crate) fn corrupt(message: impl Into<String>) -> Self {
        JfrError::Corrupt(message.into())
    }

    pub(crate) fn truncated(at: usize, len: usize) -> Self {
        JfrError::Truncated { at, len }
    }
}
