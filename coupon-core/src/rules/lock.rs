//! Locks: short reservations of a code during checkout, and their release.

use std::time::Duration;

use chrono::TimeDelta;
use serde_json::json;

use crate::rules::assign::take_if_available;
use crate::rules::{check_not_exhausted, check_not_void, check_owner, check_window};
use crate::{
    Book, CodeRecord, Error, ErrorKind, EventKind, Lock, LockGrant, NewEvent, Result, Timestamp,
};

/// Locks `code` for `user` until `now + ttl`.
///
/// An available code is assigned to the user first (subject to the cap, asking `held`). A live
/// lock is refused (`locked`) unless `token` is its token, in which case it is extended and the
/// same token returned; a wrong token is `bad_lock_token`. Also refused: another user's code
/// (`not_owner`), a void or exhausted code, outside the book's validity window. A new lock gets
/// the token made by `new_token`.
#[allow(clippy::too_many_arguments)]
pub fn lock(
    book: &Book,
    code: &mut CodeRecord,
    user: &str,
    ttl: Duration,
    token: Option<&str>,
    now: Timestamp,
    new_token: impl FnOnce() -> String,
    held: impl FnOnce() -> Result<u32>,
    events: &mut Vec<NewEvent>,
) -> Result<LockGrant> {
    check_owner(code, user)?;
    check_not_void(code)?;
    check_not_exhausted(book, code)?;
    check_window(book, now)?;
    let token = match (code.live_lock(now), token) {
        (Some(live), Some(given)) if live.token == given => live.token.clone(),
        (Some(_), Some(_)) => return Err(bad_token(&code.code)),
        (Some(live), None) => {
            return Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "code {} is locked until {}; present the lock's token to extend it",
                    code.code,
                    live.expires_at.to_rfc3339()
                ),
            ))
        }
        (None, _) => new_token(),
    };
    take_if_available(book, code, user, now, "lock", held, events)?;
    let expires_at = now + TimeDelta::from_std(ttl).unwrap_or(TimeDelta::MAX);
    code.lock = Some(Lock {
        token: token.clone(),
        expires_at,
    });
    events.push(NewEvent::code(
        EventKind::Locked,
        code.book_id,
        &code.code,
        Some(user),
        json!({ "expires_at": expires_at }),
    ));
    Ok(LockGrant {
        code: code.code.clone(),
        token,
        expires_at,
    })
}

/// Releases the live lock of `code` if `token` is its token (`bad_lock_token` otherwise).
/// Without a live lock nothing changes and it succeeds.
pub fn unlock(
    code: &mut CodeRecord,
    token: &str,
    now: Timestamp,
    events: &mut Vec<NewEvent>,
) -> Result<()> {
    let Some(live) = code.live_lock(now) else {
        return Ok(());
    };
    if live.token != token {
        return Err(bad_token(&code.code));
    }
    code.lock = None;
    events.push(NewEvent::code(
        EventKind::Unlocked,
        code.book_id,
        &code.code,
        code.owner.as_deref(),
        json!({}),
    ));
    Ok(())
}

pub(crate) fn bad_token(code: &str) -> Error {
    Error::new(
        ErrorKind::BadLockToken,
        format!("the token given is not the token of the lock on code {code}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixtures::*;
    use crate::BookSettings;

    const TTL: Duration = Duration::from_secs(60);

    fn lock_at(
        b: &Book,
        c: &mut CodeRecord,
        user: &str,
        token: Option<&str>,
        now: Timestamp,
    ) -> Result<LockGrant> {
        lock(
            b,
            c,
            user,
            TTL,
            token,
            now,
            || "tok".into(),
            || Ok(0),
            &mut vec![],
        )
    }

    #[test]
    fn locking_an_available_code_assigns_it() {
        let b = plain_book();
        let mut c = CodeRecord::new("A", 1);
        let mut events = vec![];
        let grant = lock(
            &b,
            &mut c,
            "u",
            TTL,
            None,
            t(0),
            || "tok".into(),
            || Ok(0),
            &mut events,
        )
        .unwrap();
        assert_eq!(grant.token, "tok");
        assert_eq!(grant.expires_at, t(60));
        assert_eq!(c.owner.as_deref(), Some("u"));
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Assigned, EventKind::Locked]);
    }

    #[test]
    fn live_lock_needs_its_token_to_extend() {
        let b = plain_book();
        let mut c = owned("A", "u");
        lock_at(&b, &mut c, "u", None, t(0)).unwrap();
        assert_eq!(
            lock_at(&b, &mut c, "u", None, t(1)).unwrap_err().kind(),
            ErrorKind::Locked
        );
        assert_eq!(
            lock_at(&b, &mut c, "u", Some("nope"), t(1))
                .unwrap_err()
                .kind(),
            ErrorKind::BadLockToken
        );
        let grant = lock(
            &b,
            &mut c,
            "u",
            TTL,
            Some("tok"),
            t(30),
            || "other".into(),
            || Ok(0),
            &mut vec![],
        )
        .unwrap();
        assert_eq!(grant.token, "tok");
        assert_eq!(grant.expires_at, t(90));
        // after expiry, a new lock gets a new token
        let grant = lock(
            &b,
            &mut c,
            "u",
            TTL,
            None,
            t(90),
            || "new".into(),
            || Ok(0),
            &mut vec![],
        )
        .unwrap();
        assert_eq!(grant.token, "new");
    }

    #[test]
    fn refusals() {
        let b = book(BookSettings {
            valid_from: Some(t(10)),
            valid_until: Some(t(20)),
            max_codes_per_user: Some(1),
            ..BookSettings::new("b")
        });
        let mut theirs = owned("A", "v");
        assert_eq!(
            lock_at(&b, &mut theirs, "u", None, t(15))
                .unwrap_err()
                .kind(),
            ErrorKind::NotOwner
        );
        let mut void = owned("A", "u");
        void.voided_at = Some(t(0));
        assert_eq!(
            lock_at(&b, &mut void, "u", None, t(15)).unwrap_err().kind(),
            ErrorKind::Void
        );
        let mut used = owned("A", "u");
        used.redemptions = 1;
        assert_eq!(
            lock_at(&b, &mut used, "u", None, t(15)).unwrap_err().kind(),
            ErrorKind::Exhausted
        );
        let mut mine = owned("A", "u");
        assert_eq!(
            lock_at(&b, &mut mine, "u", None, t(5)).unwrap_err().kind(),
            ErrorKind::NotYetValid
        );
        assert_eq!(
            lock_at(&b, &mut mine, "u", None, t(20)).unwrap_err().kind(),
            ErrorKind::Expired
        );
        let mut free = CodeRecord::new("A", 1);
        let err = lock(
            &b,
            &mut free,
            "u",
            TTL,
            None,
            t(15),
            || "t".into(),
            || Ok(1),
            &mut vec![],
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitReached);
        assert_eq!(free, CodeRecord::new("A", 1));
    }

    #[test]
    fn unlock_cases() {
        let b = plain_book();
        let mut c = owned("A", "u");
        let mut events = vec![];
        unlock(&mut c, "whatever", t(0), &mut events).unwrap();
        assert!(events.is_empty(), "nothing to release");
        lock_at(&b, &mut c, "u", None, t(0)).unwrap();
        assert_eq!(
            unlock(&mut c, "bad", t(1), &mut events).unwrap_err().kind(),
            ErrorKind::BadLockToken
        );
        unlock(&mut c, "tok", t(1), &mut events).unwrap();
        assert!(c.lock.is_none());
        assert_eq!(events.len(), 1);
        lock_at(&b, &mut c, "u", None, t(2)).unwrap();
        let before = c.clone();
        unlock(&mut c, "bad", t(100), &mut events).unwrap();
        assert_eq!(c, before, "an expired lock is left as it is");
    }
}
