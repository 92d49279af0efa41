//! Codes: the stored facts of one code, its derived state and the views users see.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{rules, Book, BookId, Error, Result, Timestamp};

/// The stored facts of one code. Its [`CodeState`] is derived from them and the time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    /// The code, in normal form.
    pub code: String,
    /// The book it belongs to.
    pub book_id: BookId,
    /// The user holding it.
    pub owner: Option<String>,
    /// When it was assigned to its owner.
    pub assigned_at: Option<Timestamp>,
    /// How many times it was redeemed.
    pub redemptions: u32,
    /// The last lock taken on it (it may have expired).
    pub lock: Option<Lock>,
    /// When it was voided.
    pub voided_at: Option<Timestamp>,
}

impl CodeRecord {
    /// A new, available code of `book_id`.
    pub fn new(code: impl Into<String>, book_id: BookId) -> Self {
        CodeRecord {
            code: code.into(),
            book_id,
            owner: None,
            assigned_at: None,
            redemptions: 0,
            lock: None,
            voided_at: None,
        }
    }

    /// The lock, if one is live at `now`.
    pub fn live_lock(&self, now: Timestamp) -> Option<&Lock> {
        self.lock.as_ref().filter(|l| l.expires_at > now)
    }

    /// The state of the code at `now` (SPEC §3).
    pub fn state(&self, book: &Book, now: Timestamp) -> CodeState {
        rules::state(book, self, now)
    }
}

/// A lock on a code: a secret token and an expiry. Its holder is the code's owner.
#[derive(Clone, PartialEq, Eq)]
pub struct Lock {
    /// The secret that unlocks or redeems the locked code.
    pub token: String,
    /// When the lock lapses by itself.
    pub expires_at: Timestamp,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("token", &"<secret>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// The state of a code, derived from its facts, its book and the time (SPEC §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CodeState {
    /// In the book, not assigned.
    Available,
    /// Assigned, redeemable now or later.
    Active,
    /// Assigned and under a live lock.
    Locked,
    /// Its redemptions are used up.
    Redeemed,
    /// Assigned, not used up, and the book's validity has ended.
    Expired,
    /// Voided by an admin.
    Void,
}

impl CodeState {
    /// Every state.
    pub const ALL: [CodeState; 6] = [
        CodeState::Available,
        CodeState::Active,
        CodeState::Locked,
        CodeState::Redeemed,
        CodeState::Expired,
        CodeState::Void,
    ];

    /// The snake_case name, e.g. `"redeemed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeState::Available => "available",
            CodeState::Active => "active",
            CodeState::Locked => "locked",
            CodeState::Redeemed => "redeemed",
            CodeState::Expired => "expired",
            CodeState::Void => "void",
        }
    }
}

impl fmt::Display for CodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CodeState {
    type Err = Error;

    /// ```
    /// use coupon_core::CodeState;
    /// assert_eq!("locked".parse::<CodeState>().unwrap(), CodeState::Locked);
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        CodeState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "unknown state {}; use one of available, active, locked, redeemed, expired, void",
                    crate::input::excerpt(s)
                ))
            })
    }
}

/// A code as its holder (or an admin) sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Coupon {
    /// The code.
    pub code: String,
    /// Its book.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub book_id: BookId,
    /// Its book's name.
    pub book_name: String,
    /// The user holding it, if any.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub user_id: Option<String>,
    /// Its state now.
    pub state: CodeState,
    /// Redemptions used.
    pub redemptions: u32,
    /// Redemptions left (0 when void).
    pub remaining: u32,
    /// When it was assigned.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, format = DateTime, required = true)
    )]
    pub assigned_at: Option<Timestamp>,
    /// The end of the book's validity.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, format = DateTime, required = true)
    )]
    pub valid_until: Option<Timestamp>,
    /// When its live lock lapses, if it is locked.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, format = DateTime, required = true)
    )]
    pub locked_until: Option<Timestamp>,
}

impl Coupon {
    /// The view of `record` (of `book`) at `now`.
    pub fn new(book: &Book, record: &CodeRecord, now: Timestamp) -> Self {
        let state = record.state(book, now);
        Coupon {
            code: record.code.clone(),
            book_id: book.id,
            book_name: book.settings.name.clone(),
            user_id: record.owner.clone(),
            state,
            redemptions: record.redemptions,
            remaining: rules::remaining(book, record),
            assigned_at: record.assigned_at,
            valid_until: book.settings.valid_until,
            locked_until: match state {
                CodeState::Locked => record.live_lock(now).map(|l| l.expires_at),
                _ => None,
            },
        }
    }
}

/// A granted lock: present `token` to redeem or unlock the code before `expires_at`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LockGrant {
    /// The locked code.
    pub code: String,
    /// The secret token of the lock.
    pub token: String,
    /// When the lock lapses.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
}

impl fmt::Debug for LockGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGrant")
            .field("code", &self.code)
            .field("token", &"<secret>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// One row of a book's export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRow {
    /// The code.
    pub code: String,
    /// Its state at the time of the export.
    pub state: CodeState,
    /// Its owner.
    pub assigned_to: Option<String>,
    /// Redemptions used.
    pub redemptions: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_round_trip() {
        for state in CodeState::ALL {
            assert_eq!(state.as_str().parse::<CodeState>().unwrap(), state);
            assert_eq!(
                serde_json::to_value(state).unwrap(),
                serde_json::Value::String(state.as_str().into())
            );
        }
        assert!("gone".parse::<CodeState>().is_err());
    }

    #[test]
    fn lock_tokens_never_show_in_debug() {
        let lock = Lock {
            token: "s3cr3t".into(),
            expires_at: Timestamp::default(),
        };
        assert!(!format!("{lock:?}").contains("s3cr3t"));
        let grant = LockGrant {
            code: "A".into(),
            token: "s3cr3t".into(),
            expires_at: Timestamp::default(),
        };
        assert!(!format!("{grant:?}").contains("s3cr3t"));
    }
}
