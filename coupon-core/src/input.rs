//! Validation of everything that comes from outside: codes, user ids, keys, limits, durations.
//!
//! Every check refuses with [`ErrorKind::InvalidInput`](crate::ErrorKind::InvalidInput) and a
//! message naming the field, what was wrong and what would be right. Nothing is trimmed or
//! changed silently, except the documented normal form of codes.

use std::time::Duration;

use crate::{Error, Result};

/// The longest code, in characters.
pub const MAX_CODE_LEN: usize = 64;
/// The longest user id, in characters.
pub const MAX_USER_ID_LEN: usize = 128;
/// The longest order id or idempotency key, in characters.
pub const MAX_KEY_LEN: usize = 255;
/// The largest redemption context, as serialized JSON, in bytes.
pub const MAX_CONTEXT_BYTES: usize = 64 * 1024;
/// The shortest lock TTL.
pub const MIN_LOCK_TTL: Duration = Duration::from_secs(1);
/// The longest lock TTL.
pub const MAX_LOCK_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// Brings a code to its normal form: surrounding whitespace trimmed, ASCII upper-case.
///
/// # Errors
/// `invalid_input` when the result is empty, longer than 64 characters, or holds anything but
/// `A–Z 0–9 - _`.
///
/// ```
/// assert_eq!(coupon_core::normalize_code("  summer-ab12 ").unwrap(), "SUMMER-AB12");
/// assert!(coupon_core::normalize_code("two words").is_err());
/// ```
pub fn normalize_code(raw: &str) -> Result<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(Error::invalid_input(
            "a code cannot be empty; use 1 to 64 characters from A-Z, 0-9, '-' and '_'",
        ));
    }
    if let Some((pos, c)) = trimmed
        .chars()
        .enumerate()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(Error::invalid_input(format!(
            "invalid code {}: character {} at position {} is not allowed; use only A-Z, 0-9, '-' and '_'",
            excerpt(trimmed),
            describe_char(c),
            pos + 1
        )));
    }
    if trimmed.len() > MAX_CODE_LEN {
        return Err(Error::invalid_input(format!(
            "invalid code {}: {} characters is too long; a code has at most {MAX_CODE_LEN}",
            excerpt(trimmed),
            trimmed.len()
        )));
    }
    Ok(trimmed.to_ascii_uppercase())
}

/// Checks a user id: 1–128 printable ASCII characters, spaces allowed inside only.
///
/// # Errors
/// `invalid_input` otherwise; the id is never trimmed silently.
///
/// ```
/// assert!(coupon_core::validate_user_id("user-42").is_ok());
/// assert!(coupon_core::validate_user_id(" user-42").is_err());
/// ```
pub fn validate_user_id(user: &str) -> Result<()> {
    validate_key("user id", user, MAX_USER_ID_LEN)
}

/// Checks an opaque key (order id, idempotency key, lock token): printable ASCII, no
/// surrounding spaces, 1 to `max` characters.
pub(crate) fn validate_key(field: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid_input(format!(
            "{field} cannot be empty; use 1 to {max} printable ASCII characters"
        )));
    }
    if let Some((pos, c)) = value
        .chars()
        .enumerate()
        .find(|(_, c)| !(' '..='~').contains(c))
    {
        return Err(Error::invalid_input(format!(
            "{field} {}: character {} at position {} is not allowed; use printable ASCII only",
            excerpt(value),
            describe_char(c),
            pos + 1
        )));
    }
    if value.starts_with(' ') || value.ends_with(' ') {
        return Err(Error::invalid_input(format!(
            "{field} {} has surrounding spaces; remove them (spaces are allowed inside only)",
            excerpt(value)
        )));
    }
    if value.len() > max {
        return Err(Error::invalid_input(format!(
            "{field} is {} characters long; at most {max} are allowed",
            value.len()
        )));
    }
    Ok(())
}

/// Checks a lock TTL: between 1 second and 24 hours, in whole seconds; `field` names it in the
/// message.
///
/// # Errors
/// `invalid_input` otherwise.
///
/// ```
/// use std::time::Duration;
/// assert!(coupon_core::validate_lock_ttl("--ttl", Duration::from_secs(120)).is_ok());
/// assert!(coupon_core::validate_lock_ttl("--ttl", Duration::from_millis(1500)).is_err());
/// ```
pub fn validate_lock_ttl(field: &str, ttl: Duration) -> Result<()> {
    if ttl < MIN_LOCK_TTL || ttl > MAX_LOCK_TTL || ttl.subsec_nanos() != 0 {
        return Err(Error::invalid_input(format!(
            "{field} of {} is out of range; use whole seconds from 1s to 24h",
            humanize(ttl)
        )));
    }
    Ok(())
}

/// Checks the JSON context of a redemption: at most 64 KiB once serialized.
pub(crate) fn validate_context(context: &serde_json::Value) -> Result<()> {
    let size = serde_json::to_vec(context)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_CONTEXT_BYTES {
        return Err(Error::invalid_input(format!(
            "redemption context is {size} bytes of JSON; at most {MAX_CONTEXT_BYTES} are allowed"
        )));
    }
    Ok(())
}

/// A short, escaped, quoted rendering of user text for messages.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 40;
    let mut shown: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// User text cut to a readable length for reports (not quoted, not escaped).
pub(crate) fn shorten(text: &str) -> String {
    const MAX: usize = 100;
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut shown: String = text.chars().take(MAX).collect();
    shown.push('…');
    shown
}

fn describe_char(c: char) -> String {
    if c.is_control() || c.is_whitespace() || !c.is_ascii() {
        format!("{:?} (U+{:04X})", c, c as u32)
    } else {
        format!("'{c}'")
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:?}", d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn codes_are_trimmed_and_upper_cased() {
        assert_eq!(normalize_code("\tab-12_x\r\n").unwrap(), "AB-12_X");
        assert_eq!(normalize_code(&"a".repeat(64)).unwrap(), "A".repeat(64));
    }

    #[test]
    fn bad_codes_are_refused_with_reason() {
        for (raw, needle) in [
            ("", "empty"),
            ("   ", "empty"),
            ("A B", "position 2"),
            ("ÄB", "U+00C4"),
            ("A;DROP", "';'"),
            ("A\u{0}", "U+0000"),
            (&"A".repeat(65), "too long"),
        ] {
            let err = normalize_code(raw).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{raw:?}");
            assert!(err.message().contains(needle), "{raw:?}: {}", err.message());
        }
    }

    #[test]
    fn user_ids_are_checked_not_trimmed() {
        assert!(validate_user_id("user 42").is_ok());
        assert!(validate_user_id(&"u".repeat(128)).is_ok());
        for bad in ["", " u", "u ", "u\n", "ü", &"u".repeat(129)] {
            let err = validate_user_id(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
        }
    }

    #[test]
    fn long_input_is_cut_in_messages() {
        let err = normalize_code(&"A".repeat(10_000)).unwrap_err();
        assert!(err.message().len() < 200, "{}", err.message());
    }

    #[test]
    fn lock_ttl_bounds() {
        assert!(validate_lock_ttl("ttl", Duration::from_secs(1)).is_ok());
        assert!(validate_lock_ttl("ttl", MAX_LOCK_TTL).is_ok());
        assert!(validate_lock_ttl("ttl", Duration::ZERO).is_err());
        assert!(validate_lock_ttl("ttl", MAX_LOCK_TTL + Duration::from_secs(1)).is_err());
        assert!(validate_lock_ttl("ttl", Duration::from_millis(1500)).is_err());
    }

    #[test]
    fn context_size_is_bounded() {
        assert!(validate_context(&serde_json::json!({"cart": [1, 2, 3]})).is_ok());
        let big = serde_json::Value::String("x".repeat(MAX_CONTEXT_BYTES));
        assert_eq!(
            validate_context(&big).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
    }
}
