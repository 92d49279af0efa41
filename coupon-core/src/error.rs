//! The one error type of the library and its stable kinds.

use std::fmt;

/// A boxed error from a storage backend or the operating system.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as a stable machine-readable kind.
///
/// [`ErrorKind::as_str`] gives the snake_case name used by the CLI's JSON and the HTTP API.
/// New kinds may be added in minor releases, so matches need a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A field, code, user id or CSV row is not acceptable.
    InvalidInput,
    /// A code pattern cannot be used for generation.
    InvalidPattern,
    /// The request cannot be met: the pattern's space is too small or too guessable.
    Infeasible,
    /// The book or code does not exist.
    NotFound,
    /// The thing to create exists already.
    AlreadyExists,
    /// The user holds as many codes of the book as allowed.
    LimitReached,
    /// The book has no available code left.
    SoldOut,
    /// The code belongs to another user.
    NotOwner,
    /// The code is under a live lock and no (or not its) token was given.
    Locked,
    /// The lock token presented is not the lock's token.
    BadLockToken,
    /// The code has no redemption left.
    Exhausted,
    /// The code was voided.
    Void,
    /// The book's validity window has not started.
    NotYetValid,
    /// The book's validity window has ended.
    Expired,
    /// Transient contention; the operation was retried and may succeed if tried again.
    Conflict,
    /// The storage failed (unreachable, corrupt, I/O …).
    Backend,
}

impl ErrorKind {
    /// Every kind, in the order of the specification.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::InvalidInput,
        ErrorKind::InvalidPattern,
        ErrorKind::Infeasible,
        ErrorKind::NotFound,
        ErrorKind::AlreadyExists,
        ErrorKind::LimitReached,
        ErrorKind::SoldOut,
        ErrorKind::NotOwner,
        ErrorKind::Locked,
        ErrorKind::BadLockToken,
        ErrorKind::Exhausted,
        ErrorKind::Void,
        ErrorKind::NotYetValid,
        ErrorKind::Expired,
        ErrorKind::Conflict,
        ErrorKind::Backend,
    ];

    /// The stable snake_case name of the kind, e.g. `"limit_reached"`.
    ///
    /// ```
    /// assert_eq!(coupon_core::ErrorKind::BadLockToken.as_str(), "bad_lock_token");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::InvalidPattern => "invalid_pattern",
            ErrorKind::Infeasible => "infeasible",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::LimitReached => "limit_reached",
            ErrorKind::SoldOut => "sold_out",
            ErrorKind::NotOwner => "not_owner",
            ErrorKind::Locked => "locked",
            ErrorKind::BadLockToken => "bad_lock_token",
            ErrorKind::Exhausted => "exhausted",
            ErrorKind::Void => "void",
            ErrorKind::NotYetValid => "not_yet_valid",
            ErrorKind::Expired => "expired",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Backend => "backend",
        }
    }

    /// Whether the operation may succeed when simply tried again.
    pub fn is_retryable(self) -> bool {
        self == ErrorKind::Conflict
    }

    /// Whether this is a refusal by a business rule (as opposed to bad input or a failure).
    pub fn is_refusal(self) -> bool {
        matches!(
            self,
            ErrorKind::AlreadyExists
                | ErrorKind::LimitReached
                | ErrorKind::SoldOut
                | ErrorKind::NotOwner
                | ErrorKind::Locked
                | ErrorKind::BadLockToken
                | ErrorKind::Exhausted
                | ErrorKind::Void
                | ErrorKind::NotYetValid
                | ErrorKind::Expired
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error of every fallible operation: a [`ErrorKind`], a message for people and, for
/// backend failures, the underlying source.
///
/// Messages say what was wrong and what would be right; they never contain SQL or a lock token.
///
/// ```
/// use coupon_core::{Error, ErrorKind};
/// let err = Error::new(ErrorKind::SoldOut, "book 7 has no available code");
/// assert_eq!(err.kind(), ErrorKind::SoldOut);
/// assert_eq!(err.to_string(), "book 7 has no available code");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<BoxError>,
}

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// An error of `kind` with a message and the error that caused it.
    pub fn with_source(
        kind: ErrorKind,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Error {
            kind,
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An `invalid_input` error.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidInput, message)
    }

    /// An `invalid_pattern` error.
    pub fn invalid_pattern(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidPattern, message)
    }

    /// A `not_found` error.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// A `conflict` (retryable) error keeping its source.
    pub fn conflict(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::with_source(ErrorKind::Conflict, message, source)
    }

    /// A `backend` error keeping its source.
    pub fn backend(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::with_source(ErrorKind::Backend, message, source)
    }

    /// The kind of the error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the source.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether trying again may succeed (`conflict`).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn kinds_have_distinct_snake_case_names() {
        let names: std::collections::HashSet<_> =
            ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        for name in names {
            assert!(name.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        }
    }

    #[test]
    fn backend_error_keeps_its_source() {
        let io = std::io::Error::other("disk on fire");
        let err = Error::backend("cannot write the database", io);
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert_eq!(
            err.source().map(|s| s.to_string()).as_deref(),
            Some("disk on fire")
        );
        assert!(!err.is_retryable());
    }

    #[test]
    fn only_conflict_is_retryable() {
        for kind in ErrorKind::ALL {
            assert_eq!(kind.is_retryable(), kind == ErrorKind::Conflict);
        }
    }
}
