//! Reading codes to import from a CSV file (SPEC §7), as a stream of [`ImportRow`]s.
//!
//! - UTF-8 with or without a BOM, LF or CRLF line ends; blank lines are skipped.
//! - One code per line. A first non-blank row whose single value is `code` (any case) is a
//!   header and is skipped.
//! - With several columns a header is required and the column named `code` (any case) is used;
//!   without one the whole file is refused ([`CsvRows::new`] fails with `invalid_input`).
//! - Line numbers are physical lines, 1-based; a quoted field spanning lines is reported at its
//!   first line.
//! - A value that is not valid UTF-8 is an invalid row (`text: Err("invalid UTF-8")`); so is a
//!   read error, after which the stream ends, and a row whose quoted value is still open at the
//!   end of the input.

use std::collections::VecDeque;
use std::io::Read;

use coupon_core::{Error, ImportRow};
use csv::{ByteRecord, Reader, ReaderBuilder};

/// The name of the code column in a header (compared without case).
const CODE_HEADER: &[u8] = b"code";
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A streaming iterator of the rows to import from a CSV reader.
pub struct CsvRows<R> {
    reader: Reader<LineCounter<R>>,
    /// The column holding the code; `None` when the file has one column and no header.
    column: Option<usize>,
    /// The first data row, read while looking for a header.
    pending: Option<ImportRow>,
    record: ByteRecord,
    done: bool,
}

impl<R: Read> std::fmt::Debug for CsvRows<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvRows")
            .field("column", &self.column)
            .field("done", &self.done)
            .finish()
    }
}

impl<R: Read> CsvRows<R> {
    /// How many bytes of the input have been read so far.
    pub fn bytes_read(&self) -> u64 {
        self.reader.get_ref().offset
    }

    /// Reads up to the first non-blank row of `input` to find its header, if any.
    ///
    /// # Errors
    /// `invalid_input` when the input cannot be read or has several columns but no header
    /// naming a `code` column.
    pub fn new(input: R) -> Result<Self, Error> {
        let reader = ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(LineCounter::new(input));
        let mut rows = CsvRows {
            reader,
            column: None,
            pending: None,
            record: ByteRecord::new(),
            done: false,
        };
        let mut first = true;
        loop {
            match rows.reader.read_byte_record(&mut rows.record) {
                Err(e) => {
                    return Err(Error::invalid_input(format!(
                        "cannot read the CSV input: {e}"
                    )))
                }
                Ok(false) => {
                    rows.done = true;
                    return Ok(rows);
                }
                Ok(true) => {}
            }
            if first {
                strip_bom(&mut rows.record);
                first = false;
            }
            if is_blank(&rows.record) {
                continue;
            }
            let line = rows.line();
            let header = rows
                .record
                .iter()
                .position(|field| trim(field).eq_ignore_ascii_case(CODE_HEADER));
            match (rows.record.len(), header) {
                (1, Some(_)) => {}
                (1, None) => rows.pending = Some(rows.row(line)),
                (_, Some(column)) => rows.column = Some(column),
                (n, None) => {
                    return Err(Error::invalid_input(format!(
                        "line {line} has {n} columns but no header naming a `code` column; \
                         put a header line such as `code,note` first, or one code per line"
                    )))
                }
            }
            return Ok(rows);
        }
    }

    /// The physical line (1-based) where the current record's content starts.
    ///
    /// The csv crate's own line numbers count from the start of the terminators skipped before a
    /// record (and miscount CRLF), so the lines are counted here from the raw bytes.
    fn line(&mut self) -> u64 {
        let start = self.record.position().map_or(0, |p| p.byte());
        self.reader.get_mut().line_at(start)
    }

    /// The current record as a row at `line`.
    fn row(&self, line: u64) -> ImportRow {
        let start = self.record.position().map_or(0, |p| p.byte());
        let end = self.reader.position().byte();
        if let Some(quote) = self.reader.get_ref().quotes.unclosed {
            if (start..=end).contains(&quote) {
                let text = Err("a quoted value is not closed before the end of the input".into());
                return ImportRow { line, text };
            }
        }
        let text = match self.column {
            Some(column) => match self.record.get(column) {
                Some(value) => decode(value),
                None => Err(format!(
                    "row has {} value(s) but the `code` column is column {}",
                    self.record.len(),
                    column + 1
                )),
            },
            None if self.record.len() == 1 => decode(&self.record[0]),
            None => Err(format!(
                "row has {} values; without a header naming a `code` column put one code per line",
                self.record.len()
            )),
        };
        ImportRow { line, text }
    }
}

impl<R: Read> Iterator for CsvRows<R> {
    type Item = ImportRow;

    fn next(&mut self) -> Option<ImportRow> {
        if let Some(row) = self.pending.take() {
            return Some(row);
        }
        while !self.done {
            match self.reader.read_byte_record(&mut self.record) {
                Ok(true) if is_blank(&self.record) => {}
                Ok(true) => {
                    let line = self.line();
                    return Some(self.row(line));
                }
                Ok(false) => self.done = true,
                Err(e) => {
                    self.done = true;
                    let line = self.reader.get_ref().lines + 1;
                    return Some(ImportRow {
                        line,
                        text: Err(format!("cannot read the rest of the input: {e}")),
                    });
                }
            }
        }
        None
    }
}

/// A reader that remembers where the line terminators it passed on are, until
/// [`LineCounter::line_at`] consumes them: memory stays bounded by the csv reader's buffer and
/// the current record.
struct LineCounter<R> {
    inner: R,
    /// Bytes read so far.
    offset: u64,
    /// Offsets of `\r` and `\n` bytes not yet accounted for, and whether each is a `\n`.
    marks: VecDeque<(u64, bool)>,
    /// `\n` bytes accounted for.
    lines: u64,
    /// The quoting the csv reader sees, followed byte by byte to catch a quoted field that is
    /// never closed (which the reader silently ends at the end of the input).
    quotes: Quotes,
}

/// Where a byte stands in CSV quoting.
#[derive(Debug, Default)]
struct Quotes {
    /// The offset of the quote that opened the field being read, if inside one.
    open: Option<u64>,
    /// Inside a quoted field, the previous byte was a quote: closing, or the first of `""`.
    pending: bool,
    /// The next byte starts a field (so a quote there opens a quoted field).
    field_start: bool,
    /// The opening quote of a field still open at the end of the input.
    unclosed: Option<u64>,
}

impl Quotes {
    fn byte(&mut self, offset: u64, b: u8) {
        if self.open.is_some() {
            if !self.pending {
                self.pending = b == b'"';
                return;
            }
            self.pending = false;
            if b == b'"' {
                return; // an escaped quote
            }
            self.open = None; // closed by the previous quote; `b` follows the field
        } else if b == b'"' && self.field_start {
            self.open = Some(offset);
            self.field_start = false;
            return;
        }
        self.field_start = matches!(b, b',' | b'\n' | b'\r');
    }

    fn end(&mut self) {
        if !self.pending {
            self.unclosed = self.open;
        }
    }
}

impl<R> LineCounter<R> {
    fn new(inner: R) -> Self {
        LineCounter {
            inner,
            offset: 0,
            marks: VecDeque::new(),
            lines: 0,
            quotes: Quotes {
                field_start: true,
                ..Quotes::default()
            },
        }
    }

    /// The 1-based line of the first byte at or after `start` that is not a line terminator.
    fn line_at(&mut self, start: u64) -> u64 {
        let mut content = start;
        while let Some(&(offset, lf)) = self.marks.front() {
            if offset > content {
                break;
            }
            if offset == content {
                content += 1;
            }
            self.marks.pop_front();
            self.lines += u64::from(lf);
        }
        self.lines + 1
    }
}

impl<R: Read> Read for LineCounter<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.quotes.end();
        }
        for (i, b) in buf[..n].iter().enumerate() {
            let offset = self.offset + i as u64;
            if *b == b'\n' || *b == b'\r' {
                self.marks.push_back((offset, *b == b'\n'));
            }
            self.quotes.byte(offset, *b);
        }
        self.offset += n as u64;
        Ok(n)
    }
}

fn decode(value: &[u8]) -> Result<String, String> {
    std::str::from_utf8(value)
        .map(str::to_owned)
        .map_err(|_| "invalid UTF-8".to_owned())
}

fn trim(field: &[u8]) -> &[u8] {
    field.trim_ascii()
}

fn is_blank(record: &ByteRecord) -> bool {
    record.iter().all(|field| trim(field).is_empty())
}

/// Removes a UTF-8 byte order mark from the start of the first field.
fn strip_bom(record: &mut ByteRecord) {
    let Some(first) = record.get(0) else { return };
    if !first.starts_with(BOM) {
        return;
    }
    let position = record.position().cloned();
    let mut stripped = ByteRecord::new();
    for (i, field) in record.iter().enumerate() {
        stripped.push_field(if i == 0 { &field[BOM.len()..] } else { field });
    }
    stripped.set_position(position);
    *record = stripped;
}

#[cfg(test)]
mod tests {
    use super::*;
    use coupon_core::ErrorKind;

    fn rows(input: &[u8]) -> Vec<(u64, Result<String, String>)> {
        CsvRows::new(input)
            .unwrap()
            .map(|row| (row.line, row.text))
            .collect()
    }

    fn ok(line: u64, code: &str) -> (u64, Result<String, String>) {
        (line, Ok(code.to_owned()))
    }

    #[test]
    fn one_code_per_line() {
        assert_eq!(rows(b"A\nB\n"), vec![ok(1, "A"), ok(2, "B")]);
    }

    #[test]
    fn crlf_and_no_final_newline() {
        assert_eq!(
            rows(b"A\r\nB\r\nC"),
            vec![ok(1, "A"), ok(2, "B"), ok(3, "C")]
        );
    }

    #[test]
    fn header_is_skipped_in_any_case() {
        assert_eq!(rows(b"Code\nA\n"), vec![ok(2, "A")]);
        assert_eq!(rows(b"CODE\r\nA\r\n"), vec![ok(2, "A")]);
    }

    #[test]
    fn bom_is_tolerated() {
        assert_eq!(rows(b"\xEF\xBB\xBFcode\nA\n"), vec![ok(2, "A")]);
        assert_eq!(rows(b"\xEF\xBB\xBFA\nB\n"), vec![ok(1, "A"), ok(2, "B")]);
    }

    #[test]
    fn blank_lines_are_skipped_and_lines_stay_physical() {
        assert_eq!(
            rows(b"\n\ncode\n\nA\n   \nB\n\n"),
            vec![ok(5, "A"), ok(7, "B")]
        );
    }

    #[test]
    fn several_columns_use_the_code_column() {
        assert_eq!(
            rows(b"note,Code\nfirst,A\nsecond,B\n"),
            vec![ok(2, "A"), ok(3, "B")]
        );
    }

    #[test]
    fn several_columns_without_header_refuse_the_file() {
        let err = CsvRows::new(&b"A,1\nB,2\n"[..]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.message().contains("line 1"), "{}", err.message());
    }

    #[test]
    fn short_row_is_invalid() {
        let got = rows(b"note,code\nonly\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 2);
        assert!(got[0].1.is_err());
    }

    #[test]
    fn extra_values_without_header_are_invalid() {
        let got = rows(b"A\nB,C\n");
        assert_eq!(got[0], ok(1, "A"));
        assert_eq!(got[1].0, 2);
        assert!(got[1].1.is_err());
    }

    #[test]
    fn invalid_utf8_is_an_invalid_row() {
        assert_eq!(
            rows(b"A\n\xFF\xFE\nB\n"),
            vec![ok(1, "A"), (2, Err("invalid UTF-8".into())), ok(3, "B")]
        );
    }

    #[test]
    fn a_quoted_value_left_open_is_an_invalid_row() {
        let unclosed = "a quoted value is not closed before the end of the input".to_owned();
        let got = rows(b"code\nA\n\"OPEN\nB\n");
        assert_eq!(got, vec![ok(2, "A"), (3, Err(unclosed.clone()))]);
        // Closed ones, escaped quotes and quotes inside unquoted values are not flagged.
        let fine = rows(b"\"A\"\n\"B\"\"C\"\nD\"E\n\"F\"");
        assert_eq!(
            fine,
            vec![ok(1, "A"), ok(2, "B\"C"), ok(3, "D\"E"), ok(4, "F")]
        );
        let last = rows(b"code,note\nA,x\nB,\"open\n");
        assert_eq!(last, vec![ok(2, "A"), (3, Err(unclosed))]);
    }

    #[test]
    fn quoted_field_spanning_lines_reports_its_first_line() {
        let got = rows(b"A\n\"B\nC\"\nD\n");
        assert_eq!(got[0], ok(1, "A"));
        assert_eq!(got[1], ok(2, "B\nC"));
        assert_eq!(got[2], ok(4, "D"));
    }

    #[test]
    fn crlf_with_blank_lines() {
        assert_eq!(
            rows(b"code\r\n\r\nA\r\n\r\n\r\nB\r\n"),
            vec![ok(3, "A"), ok(6, "B")]
        );
    }

    #[test]
    fn empty_input_has_no_rows() {
        assert!(rows(b"").is_empty());
        assert!(rows(b"\n\n").is_empty());
        assert!(rows(b"code\n").is_empty());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            if let Ok(rows) = CsvRows::new(&bytes[..]) {
                for row in rows {
                    proptest::prop_assert!(row.line >= 1);
                }
            }
        }
    }
}
