//! How SQLite's errors become the library's: one place that classifies driver codes.

use coupon_core::Error;
use rusqlite::ErrorCode;

/// Classifies an SQLite error: contention is a retryable `conflict`, the rest `backend`.
/// Messages name the problem, never the SQL; the driver's error is kept as the source.
pub(crate) fn classify(err: rusqlite::Error) -> Error {
    let code = err.sqlite_error_code();
    match code {
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => Error::conflict(
            "the SQLite database is busy with another writer; try again",
            err,
        ),
        Some(ErrorCode::NotADatabase) => {
            Error::backend("the file is not an SQLite database (or it is corrupt)", err)
        }
        Some(ErrorCode::DatabaseCorrupt) => Error::backend("the SQLite database is corrupt", err),
        Some(ErrorCode::CannotOpen) => Error::backend("cannot open the SQLite database file", err),
        Some(ErrorCode::ReadOnly) => Error::backend(
            "the SQLite database is read-only; check its permissions",
            err,
        ),
        Some(ErrorCode::DiskFull) => {
            Error::backend("the disk holding the SQLite database is full", err)
        }
        Some(ErrorCode::PermissionDenied) => {
            Error::backend("no permission to use the SQLite database file", err)
        }
        Some(ErrorCode::SystemIoFailure) => {
            Error::backend("an I/O error occurred on the SQLite database", err)
        }
        _ => Error::backend("the SQLite database failed", err),
    }
}

/// A connection-pool failure: usually the database could not be opened.
pub(crate) fn pool(err: r2d2::Error) -> Error {
    Error::backend(format!("cannot get an SQLite connection: {err}"), err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coupon_core::ErrorKind;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_and_locked_are_conflicts() {
        assert_eq!(
            classify(failure(rusqlite::ffi::SQLITE_BUSY)).kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            classify(failure(rusqlite::ffi::SQLITE_LOCKED)).kind(),
            ErrorKind::Conflict
        );
        assert_eq!(
            classify(failure(rusqlite::ffi::SQLITE_NOTADB)).kind(),
            ErrorKind::Backend
        );
        assert_eq!(
            classify(rusqlite::Error::InvalidQuery).kind(),
            ErrorKind::Backend
        );
    }
}
