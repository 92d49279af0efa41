//! Any bytes as an import file: the reader never panics, and every row it yields has a line
//! number within the file, in increasing order, and either a value or a reason.
#![no_main]

use coupon_cli::csv_input::CsvRows;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(rows) = CsvRows::new(data) else {
        return;
    };
    let lines = data.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    let mut last = 0;
    for row in rows {
        assert!(row.line >= last, "lines go back: {} after {last}", row.line);
        assert!(
            row.line >= 1 && row.line <= lines,
            "line {} of {lines}",
            row.line
        );
        last = row.line;
        if let Err(reason) = &row.text {
            assert!(!reason.is_empty());
        }
    }
});
