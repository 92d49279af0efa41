//! Redemption: one permanent use of a code.

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::rules::assign::take_if_available;
use crate::rules::lock::bad_token;
use crate::rules::{check_not_exhausted, check_not_void, check_owner, check_window, remaining};
use crate::{
    Book, CodeRecord, Error, ErrorKind, EventKind, NewEvent, Receipt, Redemption, Result, Timestamp,
};

/// What a redeem carries besides the code and the user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RedeemRequest {
    /// The token of the code's live lock, if it is locked.
    #[serde(default)]
    pub lock_token: Option<String>,
    /// The caller's order id: repeating a redeem with it returns the first receipt.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Free JSON kept with the redemption.
    #[serde(default)]
    pub context: Option<serde_json::Value>,
}

/// The answer to a repeated redeem: the original receipt, marked `replayed`, when `previous`
/// (the redemption with the same code and order id) was made by `user`; `not_owner` otherwise.
pub fn replay(previous: &Redemption, user: &str) -> Result<Receipt> {
    if previous.user_id != user {
        return Err(Error::new(
            ErrorKind::NotOwner,
            format!("code {} is assigned to another user", previous.code),
        ));
    }
    Ok(Receipt::new(previous, true))
}

/// Redeems `code` once for `user`.
///
/// Refused: another user's code (`not_owner`), void, used up (`exhausted`), outside the validity
/// window, and a live lock without its token (`locked`) or with another (`bad_lock_token`).
/// A live lock is released by the redeem; without one a given token is ignored. An available
/// code is assigned to the user first (subject to the cap, asking `held`; its `assigned` event
/// goes to `events`).
///
/// Returns the redemption and its `redeemed` event, which a store records together
/// ([`StoreTx::record_redemption`](crate::store::StoreTx::record_redemption)), after `events`.
pub fn redeem(
    book: &Book,
    code: &mut CodeRecord,
    user: &str,
    request: &RedeemRequest,
    now: Timestamp,
    held: impl FnOnce() -> Result<u32>,
    events: &mut Vec<NewEvent>,
) -> Result<(Redemption, NewEvent)> {
    check_owner(code, user)?;
    check_not_void(code)?;
    check_not_exhausted(book, code)?;
    check_window(book, now)?;
    if let Some(live) = code.live_lock(now) {
        match request.lock_token.as_deref() {
            None => {
                return Err(Error::new(
                    ErrorKind::Locked,
                    format!(
                        "code {} is locked for checkout; redeem it with the lock's token",
                        code.code
                    ),
                ))
            }
            Some(token) if token != live.token => return Err(bad_token(&code.code)),
            Some(_) => {}
        }
    }
    take_if_available(book, code, user, now, "redeem", held, events)?;
    code.lock = None;
    code.redemptions += 1;
    let redemption = Redemption {
        code: code.code.clone(),
        user_id: user.to_owned(),
        order_id: request.order_id.clone(),
        context: request.context.clone(),
        redeemed_at: now,
        redemptions: code.redemptions,
        remaining: remaining(book, code),
    };
    let event = NewEvent::code(
        EventKind::Redeemed,
        code.book_id,
        &code.code,
        Some(user),
        json!({
            "order_id": redemption.order_id,
            "context": redemption.context,
            "redemptions": redemption.redemptions,
        }),
    );
    Ok((redemption, event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::fixtures::*;
    use crate::rules::lock::lock;
    use crate::BookSettings;
    use std::time::Duration;

    fn redeem_at(
        b: &Book,
        c: &mut CodeRecord,
        user: &str,
        token: Option<&str>,
        now: Timestamp,
    ) -> Result<Redemption> {
        let req = RedeemRequest {
            lock_token: token.map(Into::into),
            ..RedeemRequest::default()
        };
        redeem(b, c, user, &req, now, || Ok(0), &mut vec![]).map(|(r, _)| r)
    }

    #[test]
    fn redeems_up_to_the_limit() {
        let b = book(BookSettings {
            max_redemptions_per_user: 2,
            ..BookSettings::new("b")
        });
        let mut c = owned("A", "u");
        let r = redeem_at(&b, &mut c, "u", None, t(1)).unwrap();
        assert_eq!((r.redemptions, r.remaining), (1, 1));
        let r = redeem_at(&b, &mut c, "u", None, t(2)).unwrap();
        assert_eq!((r.redemptions, r.remaining), (2, 0));
        assert_eq!(
            redeem_at(&b, &mut c, "u", None, t(3)).unwrap_err().kind(),
            ErrorKind::Exhausted
        );
    }

    #[test]
    fn redeeming_an_available_code_assigns_it_first() {
        let mut c = CodeRecord::new("A", 1);
        let mut events = vec![];
        let (_, redeemed) = redeem(
            &plain_book(),
            &mut c,
            "u",
            &RedeemRequest::default(),
            t(1),
            || Ok(0),
            &mut events,
        )
        .unwrap();
        let kinds: Vec<_> = events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [EventKind::Assigned]);
        assert_eq!(redeemed.kind, EventKind::Redeemed);
        assert_eq!(c.owner.as_deref(), Some("u"));
    }

    #[test]
    fn lock_token_rules() {
        let b = plain_book();
        let mut c = owned("A", "u");
        lock(
            &b,
            &mut c,
            "u",
            Duration::from_secs(60),
            None,
            t(0),
            || "tok".into(),
            || Ok(0),
            &mut vec![],
        )
        .unwrap();
        assert_eq!(
            redeem_at(&b, &mut c, "u", None, t(1)).unwrap_err().kind(),
            ErrorKind::Locked
        );
        assert_eq!(
            redeem_at(&b, &mut c, "u", Some("x"), t(1))
                .unwrap_err()
                .kind(),
            ErrorKind::BadLockToken
        );
        redeem_at(&b, &mut c, "u", Some("tok"), t(1)).unwrap();
        assert!(c.lock.is_none(), "released by the redeem");

        let b = book(BookSettings {
            max_redemptions_per_user: 3,
            ..BookSettings::new("b")
        });
        let mut c = owned("A", "u");
        lock(
            &b,
            &mut c,
            "u",
            Duration::from_secs(60),
            None,
            t(0),
            || "tok".into(),
            || Ok(0),
            &mut vec![],
        )
        .unwrap();
        redeem_at(&b, &mut c, "u", None, t(60)).unwrap();
        redeem_at(&b, &mut c, "u", Some("stale"), t(61)).unwrap();
    }

    #[test]
    fn refusals() {
        let b = book(BookSettings {
            valid_from: Some(t(10)),
            valid_until: Some(t(20)),
            ..BookSettings::new("b")
        });
        assert_eq!(
            redeem_at(&b, &mut owned("A", "v"), "u", None, t(15))
                .unwrap_err()
                .kind(),
            ErrorKind::NotOwner
        );
        let mut void = owned("A", "u");
        void.voided_at = Some(t(0));
        assert_eq!(
            redeem_at(&b, &mut void, "u", None, t(15))
                .unwrap_err()
                .kind(),
            ErrorKind::Void
        );
        assert_eq!(
            redeem_at(&b, &mut owned("A", "u"), "u", None, t(9))
                .unwrap_err()
                .kind(),
            ErrorKind::NotYetValid
        );
        assert_eq!(
            redeem_at(&b, &mut owned("A", "u"), "u", None, t(20))
                .unwrap_err()
                .kind(),
            ErrorKind::Expired
        );
    }

    #[test]
    fn replay_returns_the_original() {
        let mut c = owned("A", "u");
        let req = RedeemRequest {
            order_id: Some("o-1".into()),
            ..RedeemRequest::default()
        };
        let (first, _) = redeem(
            &plain_book(),
            &mut c,
            "u",
            &req,
            t(1),
            || Ok(0),
            &mut vec![],
        )
        .unwrap();
        let again = replay(&first, "u").unwrap();
        assert!(again.replayed);
        assert_eq!(
            Receipt {
                replayed: false,
                ..again
            },
            Receipt::new(&first, false)
        );
        assert_eq!(replay(&first, "v").unwrap_err().kind(), ErrorKind::NotOwner);
    }
}
