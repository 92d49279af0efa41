//! Import: adding a list of codes to a book, all or nothing, streaming.

use serde_json::json;

use crate::coupons::{append, load_book};
use crate::store::{Access, CodeFate, CouponStore};
use crate::{normalize_code, BookId, Coupons, Error, EventKind, ImportReport, NewEvent, Result};

/// How many codes go to the store at once.
pub const IMPORT_BATCH: usize = 100_000;
/// How many refused rows the error of an all-or-nothing import quotes.
const QUOTED_ROWS: usize = 5;

/// One row to import: where it was and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// Its physical line (1-based) in a file, or its index in a list.
    pub line: u64,
    /// Its text, or why it could not be read (e.g. invalid UTF-8).
    pub text: std::result::Result<String, String>,
}

impl ImportRow {
    /// A readable row.
    pub fn new(line: u64, text: impl Into<String>) -> Self {
        ImportRow {
            line,
            text: Ok(text.into()),
        }
    }
}

impl<S: CouponStore> Coupons<S> {
    /// Adds the codes of `rows` to a book, streaming them in batches inside one transaction.
    ///
    /// Codes are normalized. Codes already in the book or repeated in the input count as
    /// `duplicates`; a code of another book, or one that is not a valid code, is a refused row.
    /// By default the import is **all or nothing**: with any refused row nothing is written and
    /// the error quotes the first rows at fault. With `skip_invalid` the valid rows are added and
    /// the report lists the others. Importing the same rows again adds nothing. Memory stays flat
    /// in the number of rows. An import is not retried on conflict (its rows are consumed).
    ///
    /// # Errors
    /// `not_found`; `invalid_input` when a row is refused and `skip_invalid` is off.
    ///
    /// ```
    /// use coupon_core::{BookSettings, Coupons, ImportRow, MemoryStore};
    /// let coupons = Coupons::new(MemoryStore::new());
    /// let book = coupons.create_book(&BookSettings::new("Partners"))?;
    /// let rows = ["alpha-1", "ALPHA-2", "alpha-1"].iter().enumerate()
    ///     .map(|(i, code)| ImportRow::new(i as u64 + 1, *code));
    /// let report = coupons.import_codes(book.id, rows, false)?;
    /// assert_eq!((report.inserted, report.duplicates), (2, 1));
    /// # Ok::<(), coupon_core::Error>(())
    /// ```
    pub fn import_codes(
        &self,
        book: BookId,
        rows: impl IntoIterator<Item = ImportRow>,
        skip_invalid: bool,
    ) -> Result<ImportReport> {
        self.import_rows(book, rows, skip_invalid, "line")
    }

    /// Adds a list of codes to a book, exactly as [`import_codes`](Coupons::import_codes) does
    /// with a file, but numbering the rows by their 0-based index in the list: the report's
    /// [`InvalidRow::line`](crate::InvalidRow::line) is that index, and the error of an
    /// all-or-nothing import quotes rows as `index N`. This is the HTTP API's import.
    ///
    /// # Errors
    /// `not_found`; `invalid_input` when a code is refused and `skip_invalid` is off.
    ///
    /// ```
    /// use coupon_core::{BookSettings, Coupons, ErrorKind, MemoryStore};
    /// let coupons = Coupons::new(MemoryStore::new());
    /// let book = coupons.create_book(&BookSettings::new("Partners"))?;
    /// let err = coupons.import_list(book.id, ["A-1", "no spaces"], false).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidInput);
    /// assert!(err.message().contains("index 1:"), "{}", err.message());
    /// let report = coupons.import_list(book.id, ["A-1", "no spaces"], true)?;
    /// assert_eq!((report.inserted, report.invalid[0].line), (1, 1));
    /// # Ok::<(), coupon_core::Error>(())
    /// ```
    pub fn import_list<T: Into<String>>(
        &self,
        book: BookId,
        codes: impl IntoIterator<Item = T>,
        skip_invalid: bool,
    ) -> Result<ImportReport> {
        let rows = (0u64..)
            .zip(codes)
            .map(|(index, code)| ImportRow::new(index, code));
        self.import_rows(book, rows, skip_invalid, "index")
    }

    /// The import of [`import_codes`](Coupons::import_codes), naming rows by `unit` in errors.
    fn import_rows(
        &self,
        book: BookId,
        rows: impl IntoIterator<Item = ImportRow>,
        skip_invalid: bool,
        unit: &str,
    ) -> Result<ImportReport> {
        let now = self.now();
        self.store().transaction(Access::Write, |tx| {
            load_book(tx, book)?;
            let mut report = ImportReport::default();
            let mut batch: Vec<(u64, String)> = Vec::with_capacity(IMPORT_BATCH);
            let mut flush = |batch: &mut Vec<(u64, String)>, report: &mut ImportReport| {
                // In code order (stores insert fastest in index order), the first line of
                // each code kept and the repeats counted as duplicates.
                batch.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
                let before = batch.len();
                batch.dedup_by(|later, first| later.1 == first.1);
                report.duplicates += (before - batch.len()) as u64;
                let (lines, codes): (Vec<u64>, Vec<String>) = batch.drain(..).unzip();
                let fates = tx.add_codes(book, &codes, now)?;
                let mut refused = Vec::new();
                for ((fate, code), line) in fates.into_iter().zip(codes).zip(lines) {
                    match fate {
                        CodeFate::Inserted => report.inserted += 1,
                        CodeFate::InBook => report.duplicates += 1,
                        CodeFate::InOtherBook(other) => refused.push((line, code, other)),
                    }
                }
                refused.sort_unstable_by_key(|(line, ..)| *line);
                for (line, code, other) in refused {
                    report.refuse(line, &code, format!("code already belongs to book {other}"));
                }
                Ok::<_, Error>(())
            };
            for row in rows {
                match &row.text {
                    Err(reason) => report.refuse(row.line, "", reason.as_str()),
                    Ok(text) => match normalize_code(text) {
                        Ok(code) => batch.push((row.line, code)),
                        Err(e) => report.refuse(row.line, text, e.message()),
                    },
                }
                if batch.len() == IMPORT_BATCH {
                    flush(&mut batch, &mut report)?;
                }
            }
            flush(&mut batch, &mut report)?;
            report.invalid.sort_by_key(|row| row.line);
            if report.invalid_total > 0 && !skip_invalid {
                return Err(refusal(&report, unit));
            }
            if report.inserted > 0 {
                append(
                    tx,
                    now,
                    vec![NewEvent::book(
                        EventKind::CodesAdded,
                        book,
                        json!({ "count": report.inserted, "source": "import" }),
                    )],
                )?;
            }
            Ok(report)
        })
    }
}

/// The error of an all-or-nothing import with refused rows.
fn refusal(report: &ImportReport, unit: &str) -> Error {
    let quoted: Vec<String> = report
        .invalid
        .iter()
        .take(QUOTED_ROWS)
        .map(|row| format!("{unit} {}: {}", row.line, row.reason))
        .collect();
    let more = report.invalid_total.saturating_sub(quoted.len() as u64);
    let mut message = format!(
        "{} row(s) refused, nothing was imported (use skip_invalid to import the valid rows): {}",
        report.invalid_total,
        quoted.join("; ")
    );
    if more > 0 {
        message.push_str(&format!("; and {more} more"));
    }
    Error::invalid_input(message)
}
