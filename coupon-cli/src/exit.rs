//! Exit statuses of `coupon`, one function from an error to its status.

use std::error::Error as StdError;
use std::io;

use coupon_core::ErrorKind;

/// Success.
pub const OK: u8 = 0;
/// A backend failure, or anything else (I/O).
pub const FAILURE: u8 = 1;
/// A usage error reported by the argument parser.
pub const USAGE: u8 = 2;
/// The book or code does not exist.
pub const NOT_FOUND: u8 = 3;
/// Refused by a rule.
pub const REFUSED: u8 = 4;
/// Invalid input, an invalid pattern, or an infeasible request.
pub const INVALID: u8 = 5;
/// Transient contention; trying again may succeed.
pub const CONFLICT: u8 = 6;

/// The exit statuses, as shown at the end of `coupon --help`.
pub const HELP: &str = "\
Exit status:
  0  success
  1  backend failure (database unreachable, corrupt, ...) or any other error (I/O)
  2  usage error (bad command line)
  3  not_found
  4  refused by a rule: already_exists, limit_reached, sold_out, not_owner, locked,
     bad_lock_token, exhausted, void, not_yet_valid, expired
  5  invalid_input, invalid_pattern, infeasible
  6  conflict (retryable: try again)

With --json, errors are written to stderr as {\"error\": {\"kind\": \"...\", \"message\": \"...\"}}.
The database URL is read from --database-url or COUPON_DATABASE_URL:
postgres://USER@HOST:PORT/DATABASE[?schema=NAME], sqlite://PATH, sqlite:///abs/path,
sqlite::memory: or a plain path (default: coupons.db).";

/// The exit status for an error of `kind`.
pub fn code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::NotFound => NOT_FOUND,
        ErrorKind::InvalidInput | ErrorKind::InvalidPattern | ErrorKind::Infeasible => INVALID,
        ErrorKind::Conflict => CONFLICT,
        kind if kind.is_refusal() => REFUSED,
        _ => FAILURE,
    }
}

/// Whether a closed pipe (`| head`) is anywhere in the error's chain: such a failure ends quietly.
pub fn is_broken_pipe(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if io.kind() == io::ErrorKind::BrokenPipe {
                return true;
            }
        }
        next = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_its_status() {
        for kind in ErrorKind::ALL {
            let expected = match kind.as_str() {
                "not_found" => 3,
                "invalid_input" | "invalid_pattern" | "infeasible" => 5,
                "conflict" => 6,
                "backend" => 1,
                _ => 4,
            };
            assert_eq!(code(kind), expected, "{kind}");
        }
    }

    #[test]
    fn broken_pipe_is_found_in_the_chain() {
        let pipe = io::Error::new(io::ErrorKind::BrokenPipe, "closed");
        let wrapped = coupon_core::Error::with_source(ErrorKind::Backend, "write failed", pipe);
        assert!(is_broken_pipe(&wrapped));
        let other = io::Error::new(io::ErrorKind::NotFound, "gone");
        assert!(!is_broken_pipe(&other));
    }
}
