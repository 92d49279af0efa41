//! How Postgres's errors become the library's: one place that classifies driver errors.
//!
//! Transient contention — serialization failures, deadlocks, lock timeouts — is a retryable
//! `conflict`; everything else is `backend`. Messages name the problem (with the server's own
//! sentence where it helps), never the SQL; the driver's error is kept as the source.

use coupon_core::{Error, ErrorKind};
use postgres::error::SqlState;

/// Whether an SQLSTATE is transient contention that may succeed when tried again.
pub(crate) fn is_contention(state: &SqlState) -> bool {
    [
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::LOCK_NOT_AVAILABLE,
    ]
    .contains(state)
}

/// Classifies an error of a statement or a commit: contention is a retryable `conflict`, the
/// rest `backend`.
pub(crate) fn classify(err: postgres::Error) -> Error {
    let Some(db) = err.as_db_error() else {
        let message = if err.is_closed() {
            "the connection to the Postgres server was closed".to_owned()
        } else {
            format!("the Postgres database failed: {}", chain(&err))
        };
        return Error::backend(message, err);
    };
    let state = db.code().clone();
    if is_contention(&state) {
        return Error::conflict(
            format!(
                "the Postgres database is busy ({}); try again",
                contention(&state)
            ),
            err,
        );
    }
    let message = if state == SqlState::SYNTAX_ERROR {
        // Its message quotes the statement: keep only the code.
        format!(
            "the Postgres database refused a statement (SQLSTATE {})",
            state.code()
        )
    } else {
        format!(
            "the Postgres database failed: {} (SQLSTATE {})",
            db.message(),
            state.code()
        )
    };
    Error::backend(message, err)
}

/// Classifies an error starting a transaction: nothing was done yet, so a connection that turns
/// out to be closed (the server restarted, the pool kept a dead connection) is worth another
/// attempt on a fresh one.
pub(crate) fn begin(err: postgres::Error) -> Error {
    let gone = err.code().is_some_and(|state| {
        let code = state.code();
        // connection_exception, or the server ended the session (admin_shutdown,
        // crash_shutdown, cannot_connect_now).
        code.starts_with("08") || ["57P01", "57P02", "57P03"].contains(&code)
    });
    if err.is_closed() || gone {
        return Error::conflict(
            "the connection to the Postgres server was closed; try again",
            err,
        );
    }
    classify(err)
}

fn contention(state: &SqlState) -> &'static str {
    if *state == SqlState::T_R_SERIALIZATION_FAILURE {
        "serialization failure"
    } else if *state == SqlState::T_R_DEADLOCK_DETECTED {
        "deadlock"
    } else {
        "a row stayed locked past the lock timeout"
    }
}

/// Why a connection could not be made or set up, naming the server `target` (host, port,
/// database, user: never the password).
pub(crate) fn connect(target: &str, err: postgres::Error) -> Error {
    let reason = match err.as_db_error() {
        Some(db) => {
            let state = db.code();
            if *state == SqlState::INVALID_CATALOG_NAME {
                "the database does not exist".to_owned()
            } else if *state == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                || *state == SqlState::INVALID_PASSWORD
            {
                format!("the server refused the login: {}", db.message())
            } else if *state == SqlState::TOO_MANY_CONNECTIONS {
                "the server has no connection slot left (max_connections); use a smaller pool \
                 or fewer processes"
                    .to_owned()
            } else {
                db.message().to_owned()
            }
        }
        None if err.is_closed() => "the server closed the connection".to_owned(),
        None => chain(&err),
    };
    Error::backend(
        format!("cannot connect to the Postgres database {target}: {reason}"),
        err,
    )
}

/// A connection-pool failure: no connection could be had in time.
pub(crate) fn pool(target: &str, err: r2d2::Error) -> Error {
    Error::backend(
        format!("cannot get a connection to the Postgres database {target}: {err}"),
        err,
    )
}

/// A decoded value out of its range (e.g. a count that does not fit).
pub(crate) fn out_of_range(what: &str, value: i64) -> Error {
    Error::new(
        ErrorKind::Backend,
        format!("the Postgres database holds {what} = {value}, out of range"),
    )
}

/// The error and its causes, as one line (driver errors say little without their cause).
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contention_states_are_retryable_the_rest_are_not() {
        for state in [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::LOCK_NOT_AVAILABLE,
        ] {
            assert!(is_contention(&state), "{}", state.code());
        }
        for state in [
            SqlState::UNIQUE_VIOLATION,
            SqlState::SYNTAX_ERROR,
            SqlState::INSUFFICIENT_PRIVILEGE,
            SqlState::QUERY_CANCELED,
        ] {
            assert!(!is_contention(&state), "{}", state.code());
        }
    }

    #[test]
    fn chain_joins_causes_once() {
        let io = std::io::Error::other("connection refused");
        let outer = Error::backend("cannot connect", io);
        assert_eq!(chain(&outer), "cannot connect: connection refused");
    }
}
