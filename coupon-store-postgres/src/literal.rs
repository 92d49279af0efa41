//! Values written as SQL literals, for the deferred writes of a transaction.
//!
//! A deferred write is sent later as the text `EXECUTE name(arg, …);` of a statement prepared
//! on the connection (SQL `PREPARE`), in one simple-query message with other statements: that
//! message has no parameters, so the values are written into its text. Only these forms are
//! written, each of which Postgres reads back exactly (the connection has
//! `standard_conforming_strings` on, which every connection of the store sets, so a backslash is
//! an ordinary character):
//!
//! - text: `'…'` with each `'` doubled; a NUL character cannot be stored (nor sent in a
//!   message) and is refused;
//! - integers in decimal;
//! - times as `'YYYY-MM-DD HH:MM:SS.ffffff+00'` (UTC, microseconds; ` BC` for years before 1);
//! - JSON as its compact text, written as a text literal (the prepared statement's parameter
//!   is `json`, which keeps the text as written: the same text the binary protocol sends);
//! - `NULL`.

use std::fmt::Write as _;

use chrono::{Datelike, Timelike};
use coupon_core::{Error, Result, Timestamp};

/// One argument of a deferred statement.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lit<'a> {
    /// SQL `NULL`.
    Null,
    /// A text value.
    Text(&'a str),
    /// An integer.
    Int(i64),
    /// A point in time.
    Time(Timestamp),
    /// A JSON document.
    Json(&'a serde_json::Value),
}

impl<'a> Lit<'a> {
    /// Text, or `NULL`.
    pub(crate) fn opt_text(value: Option<&'a str>) -> Lit<'a> {
        value.map_or(Lit::Null, Lit::Text)
    }

    /// A time, or `NULL`.
    pub(crate) fn opt_time(value: Option<Timestamp>) -> Lit<'a> {
        value.map_or(Lit::Null, Lit::Time)
    }

    /// JSON, or `NULL`.
    pub(crate) fn opt_json(value: Option<&'a serde_json::Value>) -> Lit<'a> {
        value.map_or(Lit::Null, Lit::Json)
    }
}

/// Appends `EXECUTE name(args…);` to `out`.
///
/// # Errors
/// `invalid_input` for text containing a NUL character; nothing is appended then.
pub(crate) fn push_execute(out: &mut String, name: &str, args: &[Lit<'_>]) -> Result<()> {
    let start = out.len();
    out.push_str("EXECUTE ");
    out.push_str(name);
    out.push('(');
    for (i, arg) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        if let Err(e) = push_literal(out, *arg) {
            out.truncate(start);
            return Err(e);
        }
    }
    out.push_str(");");
    Ok(())
}

fn push_literal(out: &mut String, lit: Lit<'_>) -> Result<()> {
    match lit {
        Lit::Null => out.push_str("NULL"),
        Lit::Text(text) => push_text(out, text)?,
        Lit::Int(n) => {
            let _ = write!(out, "{n}");
        }
        Lit::Time(t) => push_time(out, t),
        Lit::Json(value) => push_text(out, &value.to_string())?,
    }
    Ok(())
}

fn push_text(out: &mut String, text: &str) -> Result<()> {
    if text.contains('\0') {
        return Err(Error::invalid_input(
            "a text value contains a NUL character, which Postgres cannot store",
        ));
    }
    out.reserve(text.len() + 2);
    out.push('\'');
    for c in text.chars() {
        if c == '\'' {
            out.push('\'');
        }
        out.push(c);
    }
    out.push('\'');
    Ok(())
}

fn push_time(out: &mut String, t: Timestamp) {
    let (year, era) = if t.year() >= 1 {
        (t.year(), "")
    } else {
        (1 - t.year(), " BC")
    };
    // A leap second (nanoseconds past 10⁹) is written as the last microsecond of its second.
    let micros = (t.nanosecond() / 1_000).min(999_999);
    let _ = write!(
        out,
        "'{year:04}-{:02}-{:02} {:02}:{:02}:{:02}.{micros:06}+00{era}'",
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn one(lit: Lit<'_>) -> String {
        let mut out = String::new();
        push_execute(&mut out, "p", &[lit]).unwrap();
        out.strip_prefix("EXECUTE p(")
            .and_then(|s| s.strip_suffix(");"))
            .unwrap()
            .to_owned()
    }

    #[test]
    fn text_doubles_quotes_and_keeps_backslashes() {
        assert_eq!(one(Lit::Text("it's")), "'it''s'");
        assert_eq!(one(Lit::Text(r"a\'b")), r"'a\''b'");
        assert_eq!(
            one(Lit::Text("'); DROP TABLE codes; --")),
            "'''); DROP TABLE codes; --'"
        );
        assert_eq!(one(Lit::Text("é€")), "'é€'");
        assert_eq!(one(Lit::opt_text(None)), "NULL");
    }

    #[test]
    fn nul_is_refused_and_nothing_is_appended() {
        let mut out = String::from("X;");
        let err = push_execute(&mut out, "p", &[Lit::Int(1), Lit::Text("a\0b")]).unwrap_err();
        assert_eq!(err.kind(), coupon_core::ErrorKind::InvalidInput);
        assert_eq!(out, "X;");
    }

    #[test]
    fn times_are_utc_with_microseconds() {
        let t = Utc.with_ymd_and_hms(2026, 11, 25, 9, 5, 7).unwrap()
            + chrono::Duration::microseconds(42);
        assert_eq!(one(Lit::Time(t)), "'2026-11-25 09:05:07.000042+00'");
        let far = Utc.with_ymd_and_hms(12345, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(one(Lit::Time(far)), "'12345-01-02 03:04:05.000000+00'");
        let bc = Utc.with_ymd_and_hms(0, 12, 31, 0, 0, 0).unwrap();
        assert_eq!(one(Lit::Time(bc)), "'0001-12-31 00:00:00.000000+00 BC'");
    }

    #[test]
    fn json_and_integers() {
        let v = serde_json::json!({"a": "it's", "n": [1, null]});
        assert_eq!(one(Lit::Json(&v)), r#"'{"a":"it''s","n":[1,null]}'"#);
        assert_eq!(one(Lit::Int(-7)), "-7");
        let mut out = String::new();
        push_execute(&mut out, "q", &[Lit::Int(1), Lit::Null]).unwrap();
        assert_eq!(out, "EXECUTE q(1, NULL);");
    }
}
