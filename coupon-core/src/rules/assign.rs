//! Assignment: giving a code to a user.

use serde_json::json;

use crate::rules::{check_cap, check_not_expired, check_not_void, check_owner};
use crate::{Book, CodeRecord, EventKind, NewEvent, Result, Timestamp};

/// Decides and applies the assignment of a specific `code` to `user`.
///
/// A code the user already holds is returned as it is (idempotent, no event). Otherwise it is
/// refused when held by someone else (`not_owner`, whatever its lock), void (`void`), the book
/// expired (`expired`) or the user at the cap (`limit_reached`, asking `held`).
pub fn assign_code(
    book: &Book,
    code: &mut CodeRecord,
    user: &str,
    now: Timestamp,
    held: impl FnOnce() -> Result<u32>,
    events: &mut Vec<NewEvent>,
) -> Result<()> {
    check_owner(code, user)?;
    check_not_void(code)?;
    if code.owner.is_some() {
        return Ok(());
    }
    check_not_expired(book, now)?;
    check_cap(book, user, held()?)?;
    take(code, user, now, "specific", events);
    Ok(())
}

/// Checks that `user`, who holds `held` codes of the book, may get a random one at `now`:
/// refused when the book expired (`expired`) or at the cap (`limit_reached`).
pub fn check_random(book: &Book, user: &str, held: u32, now: Timestamp) -> Result<()> {
    check_not_expired(book, now)?;
    check_cap(book, user, held)
}

/// Makes `user` the owner of the available `code` and records it; `how` says which operation
/// assigned it (`random`, `specific`, `lock`, `redeem`).
pub fn take(
    code: &mut CodeRecord,
    user: &str,
    now: Timestamp,
    how: &str,
    events: &mut Vec<NewEvent>,
) {
    debug_assert!(code.owner.is_none(), "only available codes are taken");
    code.owner = Some(user.to_owned());
    code.assigned_at = Some(now);
    events.push(NewEvent::code(
        EventKind::Assigned,
        code.book_id,
        &code.code,
        Some(user),
        json!({ "by": how }),
    ));
}

/// Assigns an available `code` to `user` when an operation other than assignment (lock,
/// redeem) touches it, subject to the cap; does nothing for a code the user holds.
pub(crate) fn take_if_available(
    book: &Book,
    code: &mut CodeRecord,
    user: &str,
    now: Timestamp,
    how: &str,
    held: impl FnOnce() -> Result<u32>,
    events: &mut Vec<NewEvent>,
) -> Result<()> {
    if code.owner.is_none() {
        check_cap(book, user, held()?)?;
        take(code, user, now, how, events);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixtures::*;
    use crate::{BookSettings, ErrorKind};

    fn never() -> Result<u32> {
        panic!("held must not be asked")
    }

    #[test]
    fn assigns_an_available_code() {
        let b = plain_book();
        let mut c = CodeRecord::new("A", 1);
        let mut events = vec![];
        assign_code(&b, &mut c, "u", t(5), || Ok(0), &mut events).unwrap();
        assert_eq!(c.owner.as_deref(), Some("u"));
        assert_eq!(c.assigned_at, Some(t(5)));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::Assigned);
    }

    #[test]
    fn same_user_again_is_idempotent() {
        let mut c = owned("A", "u");
        let before = c.clone();
        let mut events = vec![];
        assign_code(&plain_book(), &mut c, "u", t(5), never, &mut events).unwrap();
        assert_eq!(c, before);
        assert!(events.is_empty());
    }

    #[test]
    fn refusals_in_order() {
        let expired = book(BookSettings {
            valid_until: Some(t(1)),
            max_codes_per_user: Some(1),
            ..BookSettings::new("b")
        });
        let mut ev = vec![];
        let mut other = owned("A", "v");
        other.voided_at = Some(t(0));
        let err = assign_code(&expired, &mut other, "u", t(5), never, &mut ev).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotOwner);

        let mut void = CodeRecord::new("A", 1);
        void.voided_at = Some(t(0));
        let err = assign_code(&expired, &mut void, "u", t(5), never, &mut ev).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Void);

        let mut free = CodeRecord::new("A", 1);
        let err = assign_code(&expired, &mut free, "u", t(5), never, &mut ev).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Expired);

        let err = assign_code(&expired, &mut free, "u", t(0), || Ok(1), &mut ev).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LimitReached);
        assert!(ev.is_empty());
        assert_eq!(free, CodeRecord::new("A", 1));
    }

    #[test]
    fn random_checks() {
        let b = book(BookSettings {
            valid_until: Some(t(10)),
            max_codes_per_user: Some(2),
            ..BookSettings::new("b")
        });
        assert!(check_random(&b, "u", 1, t(0)).is_ok());
        assert_eq!(
            check_random(&b, "u", 2, t(0)).unwrap_err().kind(),
            ErrorKind::LimitReached
        );
        assert_eq!(
            check_random(&b, "u", 0, t(10)).unwrap_err().kind(),
            ErrorKind::Expired
        );
    }
}
