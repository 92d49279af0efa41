//! Reports of bulk operations: import and generate.

use serde::{Deserialize, Serialize};

use crate::BookId;

/// How many refused rows a report lists; `invalid_total` counts them all.
pub const MAX_LISTED_INVALID: usize = 1000;

/// A refused row of an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidRow {
    /// The physical line of the file (1-based), or the 0-based index in a list.
    pub line: u64,
    /// The row's text as given (cut to a readable length).
    pub code: String,
    /// Why it was refused.
    pub reason: String,
}

/// The result of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    /// Codes added to the book.
    pub inserted: u64,
    /// Codes already in the book, or repeated in the input.
    pub duplicates: u64,
    /// The first refused rows (at most [`MAX_LISTED_INVALID`]).
    pub invalid: Vec<InvalidRow>,
    /// How many rows were refused.
    pub invalid_total: u64,
}

impl ImportReport {
    /// Records a refused row.
    pub fn refuse(&mut self, line: u64, code: &str, reason: impl Into<String>) {
        self.invalid_total += 1;
        if self.invalid.len() < MAX_LISTED_INVALID {
            self.invalid.push(InvalidRow {
                line,
                code: crate::input::shorten(code),
                reason: reason.into(),
            });
        }
    }
}

/// The result of a generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GenerateReport {
    /// The book the codes were added to.
    #[cfg_attr(feature = "openapi", schema(value_type = i64))]
    pub book_id: BookId,
    /// Codes added (always the count asked for).
    pub generated: u64,
    /// The pattern used.
    pub pattern: String,
    /// The number of distinct codes the pattern can make, in decimal.
    pub space: String,
    /// All the book's codes after generation divided by `space`: the chance that a guess hits.
    pub guess_probability: f64,
}
