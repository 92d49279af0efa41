//! The event log: one row per state change, appended in the same transaction (an outbox).

use serde::{Deserialize, Serialize};

use crate::{BookId, Timestamp};

/// What kind of change an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A book was created.
    BookCreated,
    /// A book's settings changed.
    BookUpdated,
    /// An import or a generation added codes (`data`: `{count, source}`).
    CodesAdded,
    /// A code was assigned to a user.
    Assigned,
    /// A code was locked, or its lock extended (`data`: `{expires_at}`).
    Locked,
    /// A live lock was released early.
    Unlocked,
    /// A code was redeemed (`data`: `{order_id, context, redemptions}`).
    Redeemed,
    /// A code was voided.
    Voided,
}

impl EventKind {
    /// The snake_case name, e.g. `"codes_added"`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::BookCreated => "book_created",
            EventKind::BookUpdated => "book_updated",
            EventKind::CodesAdded => "codes_added",
            EventKind::Assigned => "assigned",
            EventKind::Locked => "locked",
            EventKind::Unlocked => "unlocked",
            EventKind::Redeemed => "redeemed",
            EventKind::Voided => "voided",
        }
    }

    /// Every kind.
    pub const ALL: [EventKind; 8] = [
        EventKind::BookCreated,
        EventKind::BookUpdated,
        EventKind::CodesAdded,
        EventKind::Assigned,
        EventKind::Locked,
        EventKind::Unlocked,
        EventKind::Redeemed,
        EventKind::Voided,
    ];

    /// The kind named `name`, if any.
    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// An event about to be appended; the store gives it its `seq` and `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// What happened.
    pub kind: EventKind,
    /// To which book.
    pub book_id: BookId,
    /// To which code, if one.
    pub code: Option<String>,
    /// For which user, if one.
    pub user_id: Option<String>,
    /// Details, a JSON object.
    pub data: serde_json::Value,
}

impl NewEvent {
    /// An event about a book.
    pub fn book(kind: EventKind, book_id: BookId, data: serde_json::Value) -> Self {
        NewEvent {
            kind,
            book_id,
            code: None,
            user_id: None,
            data,
        }
    }

    /// An event about a code and, maybe, a user.
    pub fn code(
        kind: EventKind,
        book_id: BookId,
        code: &str,
        user_id: Option<&str>,
        data: serde_json::Value,
    ) -> Self {
        NewEvent {
            kind,
            book_id,
            code: Some(code.to_owned()),
            user_id: user_id.map(str::to_owned),
            data,
        }
    }
}

/// A committed event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    /// Position in the log, strictly increasing.
    pub seq: i64,
    /// When the change happened.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
    /// To which book.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub book_id: BookId,
    /// To which code.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub code: Option<String>,
    /// For which user.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub user_id: Option<String>,
    /// Details, a JSON object whose fields depend on `kind`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}

impl Event {
    /// The committed form of `event`.
    pub fn from_new(seq: i64, at: Timestamp, event: NewEvent) -> Self {
        Event {
            seq,
            at,
            kind: event.kind,
            book_id: event.book_id,
            code: event.code,
            user_id: event.user_id,
            data: event.data,
        }
    }
}
