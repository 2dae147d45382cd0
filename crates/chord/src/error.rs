//! Every way an engine or node operation can fail. `code()` is the stable name users see: the
//! binding passes it through unchanged and the TypeScript layer maps each code to one error
//! class (`ERR_KEY_TOO_LARGE` reaches JavaScript as itself).

/// The error type of the engine, the node and the configuration checks.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error("the socket is closed")]
    Closed,
    #[error("protocol mismatch: our subnet {ours:?} / {our_encryption}, theirs {theirs:?} ({reason})")]
    ProtocolMismatch { ours: String, our_encryption: String, theirs: String, reason: String },
    #[error("peer refused the connection ({code}): {reason}")]
    Rejected {
        code: String,
        reason: String,
        /// Members of its ring the refusing node suggested trying instead (when it was busy).
        elsewhere: Vec<crate::routing::NodeRef>,
    },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{message}")]
    Io { code: &'static str, message: String },
    #[error("peer {0} went away before answering")]
    PeerGone(String),
    #[error("key is {size} bytes; the limit is {limit}")]
    KeyTooLarge { size: usize, limit: usize },
    #[error("value is {size} bytes; the limit is {limit}")]
    ValueTooLarge { size: usize, limit: usize },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("peer broke the protocol: {0}")]
    Protocol(String),
    /// The Noise handshake failed: most often the network keys differ.
    #[error("handshake failed: {0}")]
    Handshake(String),
    #[error("this node is a MeshSocket, not a ChordSocket")]
    NotChord,
    #[error("internal error: {0}")]
    Internal(String),
    /// Writes are refused: the disk of a node's `dataDir` is full. Reads go on; writes are
    /// taken again once space returns.
    #[error("{0}")]
    StorageFull(String),
    /// A file of a node's `dataDir` is damaged or missing; the message names it and the remedy.
    #[error("{0}")]
    StorageCorrupt(String),
    /// The `dataDir` is in use by another running node.
    #[error("{0}")]
    StorageLocked(String),
}

/// Every code [`Error::code`] can return, for bindings that map codes to their own error
/// classes (and for the test that checks each is mapped).
pub const ERROR_CODES: [&str; 23] = [
    "ERR_SOCKET_CLOSED",
    "ERR_PROTOCOL_MISMATCH",
    "ERR_PEER_REJECTED",
    "ERR_TIMEOUT",
    "ERR_PEER_GONE",
    "ERR_KEY_TOO_LARGE",
    "ERR_VALUE_TOO_LARGE",
    "ERR_UNAVAILABLE",
    "ERR_INVALID_ARGUMENT",
    "ERR_PROTOCOL",
    "ERR_HANDSHAKE",
    "ERR_NOT_CHORD",
    "ERR_IO",
    "EADDRINUSE",
    "EADDRNOTAVAIL",
    "ECONNREFUSED",
    "ECONNRESET",
    "EACCES",
    "ETIMEDOUT",
    "ERR_INTERNAL",
    "ERR_STORAGE_FULL",
    "ERR_STORAGE_CORRUPT",
    "ERR_STORAGE_LOCKED",
];

impl Error {
    pub fn code(&self) -> &'static str {
        match self {
            Error::Closed => "ERR_SOCKET_CLOSED",
            Error::ProtocolMismatch { .. } => "ERR_PROTOCOL_MISMATCH",
            Error::Rejected { .. } => "ERR_PEER_REJECTED",
            Error::Timeout(_) => "ERR_TIMEOUT",
            Error::Io { code, .. } => code,
            Error::PeerGone(_) => "ERR_PEER_GONE",
            Error::KeyTooLarge { .. } => "ERR_KEY_TOO_LARGE",
            Error::ValueTooLarge { .. } => "ERR_VALUE_TOO_LARGE",
            Error::Unavailable(_) => "ERR_UNAVAILABLE",
            Error::InvalidArgument(_) => "ERR_INVALID_ARGUMENT",
            Error::Protocol(_) => "ERR_PROTOCOL",
            Error::Handshake(_) => "ERR_HANDSHAKE",
            Error::NotChord => "ERR_NOT_CHORD",
            Error::Internal(_) => "ERR_INTERNAL",
            Error::StorageFull(_) => "ERR_STORAGE_FULL",
            Error::StorageCorrupt(_) => "ERR_STORAGE_CORRUPT",
            Error::StorageLocked(_) => "ERR_STORAGE_LOCKED",
        }
    }

    /// An OS error, keeping its errno name as the code.
    pub fn io(error: std::io::Error, context: &str) -> Error {
        use std::io::ErrorKind::*;
        let code = match error.kind() {
            AddrInUse => "EADDRINUSE",
            AddrNotAvailable => "EADDRNOTAVAIL",
            ConnectionRefused => "ECONNREFUSED",
            ConnectionReset => "ECONNRESET",
            PermissionDenied => "EACCES",
            TimedOut => "ETIMEDOUT",
            _ => "ERR_IO",
        };
        Error::Io { code, message: format!("{context}: {error} ({code})") }
    }

    /// Failures that mean "that peer is unreachable", as opposed to a refusal or our own state.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Error::PeerGone(_) | Error::Timeout(_) | Error::Io { .. })
    }

    /// The peer is alive but has no connection slot for us (its table is full of routing
    /// peers), or closed ours on purpose to make room.
    pub fn is_busy(&self) -> bool {
        matches!(self, Error::Rejected { code, .. } if code == "busy")
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_keep_the_os_code() {
        let error = Error::io(std::io::Error::from(std::io::ErrorKind::AddrInUse), "cannot listen");
        assert_eq!(error.code(), "EADDRINUSE");
        assert!(error.to_string().contains("cannot listen"));
        assert!(error.is_unreachable());
        assert!(!Error::Closed.is_unreachable());
    }

    #[test]
    fn every_code_is_listed() {
        let samples = [
            Error::Closed,
            Error::ProtocolMismatch { ours: String::new(), our_encryption: String::new(), theirs: String::new(), reason: String::new() },
            Error::Rejected { code: String::new(), reason: String::new(), elsewhere: Vec::new() },
            Error::Timeout(String::new()),
            Error::PeerGone(String::new()),
            Error::KeyTooLarge { size: 0, limit: 0 },
            Error::ValueTooLarge { size: 0, limit: 0 },
            Error::Unavailable(String::new()),
            Error::InvalidArgument(String::new()),
            Error::Protocol(String::new()),
            Error::Handshake(String::new()),
            Error::NotChord,
            Error::Internal(String::new()),
            Error::StorageFull(String::new()),
            Error::StorageCorrupt(String::new()),
            Error::StorageLocked(String::new()),
        ];
        for error in samples {
            assert!(ERROR_CODES.contains(&error.code()), "{} is not in ERROR_CODES", error.code());
        }
        for kind in [std::io::ErrorKind::AddrInUse, std::io::ErrorKind::Other, std::io::ErrorKind::ConnectionRefused] {
            assert!(ERROR_CODES.contains(&Error::io(kind.into(), "x").code()));
        }
    }
}
