//! The rules of SPEC §5 as plain functions over loaded state and `now`.
//!
//! A rule reads the book and the code's stored facts, refuses with one [`ErrorKind`](crate::ErrorKind)
//! or changes the [`CodeRecord`] in place and appends the events that record the change. It never
//! touches storage: the one thing it may need from the store, how many codes the user already
//! holds, is asked through a `held` callback, and only when the code would be newly assigned
//! (so that the store locks the (book, user) pair only then).
//!
//! Checks run in the order of SPEC §5: ownership, then the code's own state, then the book's
//! rules. Input validation and existence are the caller's job and come first.

pub mod assign;
pub mod lock;
pub mod redeem;

use crate::{Book, CodeRecord, CodeState, Error, ErrorKind, Result, Timestamp};

/// The state of `code` (of `book`) at `now`: void, then available, redeemed, expired, locked,
/// active, in that precedence.
pub fn state(book: &Book, code: &CodeRecord, now: Timestamp) -> CodeState {
    if code.voided_at.is_some() {
        CodeState::Void
    } else if code.owner.is_none() {
        CodeState::Available
    } else if code.redemptions >= book.settings.max_redemptions_per_user {
        CodeState::Redeemed
    } else if book.is_expired(now) {
        CodeState::Expired
    } else if code.live_lock(now).is_some() {
        CodeState::Locked
    } else {
        CodeState::Active
    }
}

/// Redemptions left on `code`: none when void, else the book's limit less those used.
pub fn remaining(book: &Book, code: &CodeRecord) -> u32 {
    if code.voided_at.is_some() {
        0
    } else {
        book.settings
            .max_redemptions_per_user
            .saturating_sub(code.redemptions)
    }
}

/// Refuses a code held by someone other than `user` (`not_owner`).
pub fn check_owner(code: &CodeRecord, user: &str) -> Result<()> {
    match &code.owner {
        Some(owner) if owner != user => Err(Error::new(
            ErrorKind::NotOwner,
            format!("code {} is assigned to another user", code.code),
        )),
        _ => Ok(()),
    }
}

/// Refuses a void code (`void`).
pub fn check_not_void(code: &CodeRecord) -> Result<()> {
    if code.voided_at.is_some() {
        return Err(Error::new(
            ErrorKind::Void,
            format!("code {} was voided and can no longer be used", code.code),
        ));
    }
    Ok(())
}

/// Refuses a code whose redemptions are used up (`exhausted`).
pub fn check_not_exhausted(book: &Book, code: &CodeRecord) -> Result<()> {
    if code.redemptions >= book.settings.max_redemptions_per_user {
        return Err(Error::new(
            ErrorKind::Exhausted,
            format!(
                "code {} was already redeemed {} of {} allowed times",
                code.code, code.redemptions, book.settings.max_redemptions_per_user
            ),
        ));
    }
    Ok(())
}

/// Refuses when the book's validity has ended (`expired`).
pub fn check_not_expired(book: &Book, now: Timestamp) -> Result<()> {
    match book.settings.valid_until {
        Some(until) if now >= until => Err(Error::new(
            ErrorKind::Expired,
            format!(
                "book {} expired at {}",
                book.id,
                until.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
        )),
        _ => Ok(()),
    }
}

/// Refuses outside the book's validity window (`not_yet_valid`, `expired`).
pub fn check_window(book: &Book, now: Timestamp) -> Result<()> {
    if let Some(from) = book.settings.valid_from.filter(|from| now < *from) {
        return Err(Error::new(
            ErrorKind::NotYetValid,
            format!(
                "book {} is valid from {}; try again then",
                book.id,
                from.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
        ));
    }
    check_not_expired(book, now)
}

/// Refuses when `user` already holds as many codes of the book as allowed (`limit_reached`).
pub fn check_cap(book: &Book, user: &str, held: u32) -> Result<()> {
    match book.settings.max_codes_per_user {
        Some(max) if held >= max => Err(Error::new(
            ErrorKind::LimitReached,
            format!(
                "user {} already holds {held} code(s) of book {}, the most allowed is {max}",
                crate::input::excerpt(user),
                book.id
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use crate::{Book, BookSettings, CodeRecord, Timestamp};

    pub fn t(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_900_000_000 + secs, 0).expect("in range")
    }

    pub fn book(settings: BookSettings) -> Book {
        Book {
            id: 1,
            settings,
            created_at: t(0),
            updated_at: t(0),
        }
    }

    pub fn plain_book() -> Book {
        book(BookSettings::new("b"))
    }

    pub fn owned(code: &str, user: &str) -> CodeRecord {
        CodeRecord {
            owner: Some(user.into()),
            assigned_at: Some(t(0)),
            ..CodeRecord::new(code, 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::{BookSettings, Lock};

    #[test]
    fn state_precedence() {
        let b = book(BookSettings {
            max_redemptions_per_user: 2,
            valid_until: Some(t(100)),
            ..BookSettings::new("b")
        });
        let mut c = CodeRecord::new("A", 1);
        assert_eq!(state(&b, &c, t(1)), CodeState::Available);
        assert_eq!(
            state(&b, &c, t(200)),
            CodeState::Available,
            "unowned codes never expire"
        );
        c.owner = Some("u".into());
        assert_eq!(state(&b, &c, t(1)), CodeState::Active);
        c.lock = Some(Lock {
            token: "x".into(),
            expires_at: t(10),
        });
        assert_eq!(state(&b, &c, t(1)), CodeState::Locked);
        assert_eq!(
            state(&b, &c, t(10)),
            CodeState::Active,
            "a lock ends at its expiry"
        );
        assert_eq!(state(&b, &c, t(100)), CodeState::Expired);
        c.redemptions = 1;
        assert_eq!(state(&b, &c, t(1)), CodeState::Locked);
        c.redemptions = 2;
        assert_eq!(state(&b, &c, t(1)), CodeState::Redeemed);
        assert_eq!(state(&b, &c, t(200)), CodeState::Redeemed);
        c.voided_at = Some(t(2));
        assert_eq!(state(&b, &c, t(3)), CodeState::Void);
        assert_eq!(remaining(&b, &c), 0);
    }

    #[test]
    fn window_edges() {
        let b = book(BookSettings {
            valid_from: Some(t(10)),
            valid_until: Some(t(20)),
            ..BookSettings::new("b")
        });
        assert_eq!(
            check_window(&b, t(9)).unwrap_err().kind(),
            ErrorKind::NotYetValid
        );
        assert!(check_window(&b, t(10)).is_ok());
        assert!(check_window(&b, t(19)).is_ok());
        assert_eq!(
            check_window(&b, t(20)).unwrap_err().kind(),
            ErrorKind::Expired
        );
        assert!(check_not_expired(&b, t(9)).is_ok());
    }

    #[test]
    fn cap() {
        let b = book(BookSettings {
            max_codes_per_user: Some(2),
            ..BookSettings::new("b")
        });
        assert!(check_cap(&b, "u", 1).is_ok());
        assert_eq!(
            check_cap(&b, "u", 2).unwrap_err().kind(),
            ErrorKind::LimitReached
        );
        assert!(check_cap(&plain_book(), "u", u32::MAX).is_ok());
    }
}
