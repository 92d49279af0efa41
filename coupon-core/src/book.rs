//! Books: campaigns with shared rules, their settings, changes and statistics.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::input::validate_lock_ttl;
use crate::pattern::Pattern;
use crate::{Error, Result, Timestamp};

/// The id of a book, assigned by the store.
pub type BookId = i64;

/// The longest book name, in characters (after trimming).
pub const MAX_NAME_LEN: usize = 255;
/// The longest book description, in characters.
pub const MAX_DESCRIPTION_LEN: usize = 10_000;
/// The lock TTL of a book that does not set one.
pub const DEFAULT_LOCK_TTL: Duration = Duration::from_secs(5 * 60);

/// Everything about a book that its owner chooses.
///
/// ```
/// use coupon_core::BookSettings;
/// let settings = BookSettings {
///     max_codes_per_user: Some(2),
///     code_pattern: Some("SUMMER-[A-Z0-9]{8}".into()),
///     ..BookSettings::new("Summer sale")
/// };
/// assert_eq!(settings.max_redemptions_per_user, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(description = "Everything about a book that its owner chooses.")
)]
pub struct BookSettings {
    /// Name, 1–255 characters after trimming (stored trimmed).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 255))]
    pub name: String,
    /// Free text, at most 10,000 characters.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true, max_length = 10000))]
    pub description: Option<String>,
    /// Before this time codes cannot be redeemed or locked (they can be assigned).
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, format = DateTime, required = true)
    )]
    pub valid_from: Option<Timestamp>,
    /// From this time on the book is expired.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, format = DateTime, required = true)
    )]
    pub valid_until: Option<Timestamp>,
    /// How many times the user holding a code may redeem it (≥ 1).
    #[serde(default = "one")]
    #[cfg_attr(feature = "openapi", schema(required = true, minimum = 1))]
    pub max_redemptions_per_user: u32,
    /// How many codes of the book one user may hold (`None`: unlimited).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true, minimum = 1))]
    pub max_codes_per_user: Option<u32>,
    /// The pattern `generate` draws codes from.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub code_pattern: Option<String>,
    /// Default TTL of a lock, 1 s – 24 h, in whole seconds.
    #[serde(
        default = "default_lock_ttl",
        rename = "lock_ttl_seconds",
        with = "seconds"
    )]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = u64, required = true, minimum = 1, maximum = 86400)
    )]
    pub lock_ttl: Duration,
}

fn one() -> u32 {
    1
}

fn default_lock_ttl() -> Duration {
    DEFAULT_LOCK_TTL
}

impl BookSettings {
    /// Settings with a name and every other field at its default.
    pub fn new(name: impl Into<String>) -> Self {
        BookSettings {
            name: name.into(),
            description: None,
            valid_from: None,
            valid_until: None,
            max_redemptions_per_user: 1,
            max_codes_per_user: None,
            code_pattern: None,
            lock_ttl: DEFAULT_LOCK_TTL,
        }
    }

    /// Checks every field and returns the settings in stored form (name trimmed).
    ///
    /// # Errors
    /// `invalid_input` for a bad field, `invalid_pattern` for a bad pattern.
    pub fn validated(mut self) -> Result<Self> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
            return Err(Error::invalid_input(format!(
                "book name must have 1 to {MAX_NAME_LEN} characters after trimming, got {}",
                name.chars().count()
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(Error::invalid_input(
                "book name cannot contain control characters (newlines, tabs, …)",
            ));
        }
        self.name = name.to_owned();
        if let Some(d) = &self.description {
            let len = d.chars().count();
            if len > MAX_DESCRIPTION_LEN {
                return Err(Error::invalid_input(format!(
                    "book description has {len} characters; at most {MAX_DESCRIPTION_LEN} are allowed"
                )));
            }
        }
        if let (Some(from), Some(until)) = (self.valid_from, self.valid_until) {
            if from >= until {
                return Err(Error::invalid_input(format!(
                    "valid_from ({}) must be before valid_until ({})",
                    from.to_rfc3339(),
                    until.to_rfc3339()
                )));
            }
        }
        if self.max_redemptions_per_user == 0 {
            return Err(Error::invalid_input(
                "max_redemptions_per_user must be at least 1",
            ));
        }
        if self.max_codes_per_user == Some(0) {
            return Err(Error::invalid_input(
                "max_codes_per_user must be at least 1 (leave it unset for unlimited)",
            ));
        }
        if let Some(p) = &self.code_pattern {
            Pattern::parse(p)?;
        }
        validate_lock_ttl("lock_ttl", self.lock_ttl)?;
        Ok(self)
    }
}

/// A stored book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Book {
    /// Assigned by the store.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub id: BookId,
    /// What its owner chose.
    #[serde(flatten)]
    pub settings: BookSettings,
    /// When it was created.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    /// When it was last changed.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

impl Book {
    /// Whether the book's validity window has ended at `now`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.settings.valid_until.is_some_and(|until| now >= until)
    }

    /// Whether the book's validity window has not begun at `now`.
    pub fn is_not_yet_valid(&self, now: Timestamp) -> bool {
        self.settings.valid_from.is_some_and(|from| now < from)
    }
}

/// A change to a book's settings: `None` leaves a field as it is; for optional fields
/// `Some(None)` clears it.
///
/// ```
/// use coupon_core::BookPatch;
/// let patch = BookPatch { max_codes_per_user: Some(None), ..BookPatch::default() };
/// assert!(!patch.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(
    feature = "openapi",
    schema(
        description = "A change to a book: fields left out stay as they are; `null` clears \
                          an optional setting (`max_codes_per_user: null` is unlimited)."
    )
)]
#[serde(deny_unknown_fields)]
pub struct BookPatch {
    /// New name.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = r"\S")
    )]
    pub name: Option<String>,
    /// New description, or `Some(None)` to clear it.
    #[serde(default, with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(max_length = 10000))]
    pub description: Option<Option<String>>,
    /// New start of validity, or `Some(None)` to clear it.
    #[serde(default, with = "double_option")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, format = DateTime)
    )]
    pub valid_from: Option<Option<Timestamp>>,
    /// New end of validity, or `Some(None)` to clear it.
    #[serde(default, with = "double_option")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, format = DateTime)
    )]
    pub valid_until: Option<Option<Timestamp>>,
    /// New redemption limit per user.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub max_redemptions_per_user: Option<u32>,
    /// New per-user cap, or `Some(None)` for unlimited.
    #[serde(default, with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub max_codes_per_user: Option<Option<u32>>,
    /// New pattern, or `Some(None)` to clear it.
    #[serde(default, with = "double_option")]
    pub code_pattern: Option<Option<String>>,
    /// New default lock TTL.
    #[serde(default, rename = "lock_ttl_seconds", with = "option_seconds")]
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<u64>, minimum = 1, maximum = 86400)
    )]
    pub lock_ttl: Option<Duration>,
}

impl BookPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self == &BookPatch::default()
    }

    /// The settings with this patch applied (not yet validated).
    pub fn apply(&self, settings: &BookSettings) -> BookSettings {
        let mut s = settings.clone();
        if let Some(v) = &self.name {
            s.name.clone_from(v);
        }
        if let Some(v) = &self.description {
            s.description.clone_from(v);
        }
        if let Some(v) = self.valid_from {
            s.valid_from = v;
        }
        if let Some(v) = self.valid_until {
            s.valid_until = v;
        }
        if let Some(v) = self.max_redemptions_per_user {
            s.max_redemptions_per_user = v;
        }
        if let Some(v) = self.max_codes_per_user {
            s.max_codes_per_user = v;
        }
        if let Some(v) = &self.code_pattern {
            s.code_pattern.clone_from(v);
        }
        if let Some(v) = self.lock_ttl {
            s.lock_ttl = v;
        }
        s
    }
}

/// Live statistics of a book's codes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BookStats {
    /// Every code of the book, void ones included.
    pub codes: u64,
    /// Codes without an owner that are not void.
    pub available: u64,
    /// Codes with an owner, whatever their state.
    pub assigned: u64,
    /// Codes under a live lock.
    pub locked: u64,
    /// Codes whose redemptions are used up.
    pub redeemed: u64,
    /// Voided codes.
    pub void: u64,
    /// Distinct owners.
    pub users: u64,
    /// Total redemptions.
    pub redemptions: u64,
}

/// A book with its live statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BookDetails {
    /// The book.
    #[serde(flatten)]
    pub book: Book,
    /// Its statistics now.
    pub stats: BookStats,
}

mod seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

mod option_seconds {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|v| v.map(Duration::from_secs))
    }
}

/// `Option<Option<T>>` where a missing field is `None` and `null` is `Some(None)`.
mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        v: &Option<Option<T>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn defaults_and_trimmed_name() {
        let s = BookSettings::new("  Summer  ").validated().unwrap();
        assert_eq!(s.name, "Summer");
        assert_eq!(s.max_redemptions_per_user, 1);
        assert_eq!(s.max_codes_per_user, None);
        assert_eq!(s.lock_ttl, DEFAULT_LOCK_TTL);
    }

    #[test]
    fn every_field_is_checked() {
        let base = BookSettings::new("b");
        let cases: Vec<(BookSettings, ErrorKind)> = vec![
            (BookSettings::new("   "), ErrorKind::InvalidInput),
            (BookSettings::new("x".repeat(256)), ErrorKind::InvalidInput),
            (BookSettings::new("a\nb"), ErrorKind::InvalidInput),
            (
                BookSettings {
                    description: Some("d".repeat(10_001)),
                    ..base.clone()
                },
                ErrorKind::InvalidInput,
            ),
            (
                BookSettings {
                    valid_from: Some(at("2030-01-02T00:00:00Z")),
                    valid_until: Some(at("2030-01-01T00:00:00Z")),
                    ..base.clone()
                },
                ErrorKind::InvalidInput,
            ),
            (
                BookSettings {
                    max_redemptions_per_user: 0,
                    ..base.clone()
                },
                ErrorKind::InvalidInput,
            ),
            (
                BookSettings {
                    max_codes_per_user: Some(0),
                    ..base.clone()
                },
                ErrorKind::InvalidInput,
            ),
            (
                BookSettings {
                    lock_ttl: Duration::from_secs(25 * 3600),
                    ..base.clone()
                },
                ErrorKind::InvalidInput,
            ),
            (
                BookSettings {
                    code_pattern: Some("A*".into()),
                    ..base.clone()
                },
                ErrorKind::InvalidPattern,
            ),
        ];
        for (settings, kind) in cases {
            assert_eq!(
                settings.clone().validated().unwrap_err().kind(),
                kind,
                "{settings:?}"
            );
        }
        assert!(BookSettings::new("x".repeat(255)).validated().is_ok());
    }

    #[test]
    fn patch_sets_and_clears() {
        let s = BookSettings {
            description: Some("d".into()),
            max_codes_per_user: Some(3),
            ..BookSettings::new("b")
        };
        let patch: BookPatch =
            serde_json::from_str(r#"{"description": null, "max_redemptions_per_user": 2}"#)
                .unwrap();
        let t = patch.apply(&s);
        assert_eq!(t.description, None);
        assert_eq!(t.max_redemptions_per_user, 2);
        assert_eq!(t.max_codes_per_user, Some(3));
        assert!(BookPatch::default().is_empty());
        assert!(serde_json::from_str::<BookPatch>(r#"{"nme": "x"}"#).is_err());
    }

    #[test]
    fn book_serializes_with_spec_field_names() {
        let book = Book {
            id: 7,
            settings: BookSettings::new("b"),
            created_at: at("2030-01-01T00:00:00Z"),
            updated_at: at("2030-01-01T00:00:00Z"),
        };
        let json = serde_json::to_value(&book).unwrap();
        for field in [
            "id",
            "name",
            "description",
            "valid_from",
            "valid_until",
            "max_redemptions_per_user",
            "max_codes_per_user",
            "code_pattern",
            "lock_ttl_seconds",
            "created_at",
            "updated_at",
        ] {
            assert!(json.get(field).is_some(), "{field} missing in {json}");
        }
        assert_eq!(json["lock_ttl_seconds"], 300);
        let back: Book = serde_json::from_value(json).unwrap();
        assert_eq!(back, book);
    }
}
