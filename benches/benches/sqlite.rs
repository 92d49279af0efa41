//! The SQLite store beside SQLite's own tools, in one run, as ratios.
//!
//! ```sh
//! cargo bench -p coupon-benches --bench sqlite            # everything (about 5 minutes)
//! COUPON_BENCH_QUICK=1 cargo bench -p coupon-benches --bench sqlite   # without the 10M import
//! COUPON_BENCH_ONLY=redeem cargo bench -p coupon-benches --bench sqlite  # only the redeem pair
//! COUPON_BENCH_ONLY=assign cargo bench -p coupon-benches --bench sqlite  # only the book sizes
//! ```
//!
//! - **import**: the `coupon` CLI importing a 1,000,000-row CSV of random codes into a fresh
//!   database, beside the `sqlite3` shell loading the same file into the same schema (a
//!   database made by `coupon book create`) in one tuned transaction: WAL,
//!   `synchronous=NORMAL`, a 256 MiB cache, `.import` into a staging table, then one
//!   `INSERT … SELECT` numbering the slots in file order as the store does. Target ≤ 1.0×.
//! - **generate**: `coupon codes generate` of 1,000,000 codes of `[A-Z0-9]{12}`, beside that
//!   same `sqlite3` load. Target ≤ 0.5×. The `sqlite3` load of the file sorted shows what
//!   inserting in index order is worth.
//! - **memory**: peak resident memory of the 10,000,000-row import beside the 1,000,000-row
//!   one. Target ≤ 1.25×.
//! - **assign**: time per random assignment in a book of 1,000,000 codes beside a book of
//!   10,000. Target ≤ 1.5×. Printed too: assign and redeem time per operation in books of
//!   10,000, 1,000,000 and (without `COUPON_BENCH_QUICK`) 10,000,000 codes.
//! - **redeem**: redeems per second from one thread through the library, beside a minimal
//!   raw-SQL loop on the same database, with the store's connection settings, doing the same
//!   lookup and update (`BEGIN IMMEDIATE`, `SELECT`, `UPDATE`, `COMMIT`). Target ≥ 0.5×. For
//!   information, the same loop also appending the event row a redeem adds (a redemption is
//!   stored as its event).
//!
//! Each pair is measured alternately, three times, and the medians are compared (each redeem
//! round's three rates are printed as it ends, for the spread). Needs the
//! `sqlite3` shell and `/usr/bin/time` (GNU time, for peak memory).

use std::collections::HashSet;
use std::error::Error;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coupon_core::{BookSettings, Coupons, Pattern, RedeemRequest};
use coupon_store_sqlite::{rusqlite, SqliteStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Res<T> = Result<T, Box<dyn Error>>;

const ROUNDS: usize = 3;

fn main() -> Res<()> {
    if std::env::args().any(|a| a == "--list") {
        return Ok(()); // `cargo bench -- --list` asks for benchmark names; there are none
    }
    let dir = tempfile_dir()?;
    let quick = std::env::var_os("COUPON_BENCH_QUICK").is_some();
    let mut table = Table::default();
    let only = std::env::var("COUPON_BENCH_ONLY");
    if let Ok(only @ ("redeem" | "assign")) = only.as_deref() {
        if only == "redeem" {
            redeem_rows(&dir, &mut table)?;
        } else {
            assign_rows(&dir, quick, &mut table)?;
        }
        fs::remove_dir_all(&dir)?;
        table.print();
        return Ok(());
    }
    let coupon = build_cli()?;

    let csv_1m = dir.join("codes-1m.csv");
    write_random_codes(&csv_1m, 1_000_000, 1)?;
    let sorted_1m = dir.join("codes-1m-sorted.csv");
    write_sorted_copy(&csv_1m, &sorted_1m)?;

    // Import and generate against the sqlite3 load, alternately.
    let (mut ours, mut load, mut sorted_load, mut generate) = (vec![], vec![], vec![], vec![]);
    let mut import_rss = 0;
    for round in 0..ROUNDS {
        let db = fresh_db(&coupon, &dir, &format!("import-{round}"), None)?;
        let (secs, rss) = timed(&coupon, &db, &["codes", "import", "1", path(&csv_1m)?])?;
        ours.push(secs);
        import_rss = import_rss.max(rss);
        load.push(sqlite3_load(
            &coupon,
            &dir,
            &csv_1m,
            &format!("load-{round}"),
        )?);
        sorted_load.push(sqlite3_load(
            &coupon,
            &dir,
            &sorted_1m,
            &format!("sorted-{round}"),
        )?);
        let db = fresh_db(&coupon, &dir, &format!("gen-{round}"), Some("[A-Z0-9]{12}"))?;
        let args = ["codes", "generate", "1", "--count", "1000000"];
        generate.push(timed(&coupon, &db, &args)?.0);
        remove_dbs(&dir)?;
    }
    let load = median(&load);
    table.row(
        "import 1M rows (coupon CLI) vs sqlite3 load",
        median(&ours),
        load,
        "≤ 1.0×",
        median(&ours) <= load,
    );
    table.row(
        "generate 1M [A-Z0-9]{12} vs sqlite3 load",
        median(&generate),
        load,
        "≤ 0.5×",
        median(&generate) <= 0.5 * load,
    );
    table.info(
        "sqlite3 load of the same file sorted vs in random order",
        median(&sorted_load),
        load,
    );

    if quick {
        println!("(COUPON_BENCH_QUICK: the 10M-row import is skipped)");
    } else {
        let csv_10m = dir.join("codes-10m.csv");
        write_random_codes(&csv_10m, 10_000_000, 2)?;
        let db = fresh_db(&coupon, &dir, "import-10m", None)?;
        let (secs, rss) = timed(&coupon, &db, &["codes", "import", "1", path(&csv_10m)?])?;
        fs::remove_file(&csv_10m)?;
        remove_dbs(&dir)?;
        println!("import of 10M rows: {secs:.1} s, peak {} MiB", rss / 1024);
        table.ratio_row(
            "peak memory, import 10M vs 1M rows (KiB)",
            rss as f64,
            import_rss as f64,
            "≤ 1.25×",
            rss as f64 <= 1.25 * import_rss as f64,
        );
    }

    assign_rows(&dir, quick, &mut table)?;
    redeem_rows(&dir, &mut table)?;

    fs::remove_dir_all(&dir)?;
    table.print();
    Ok(())
}

/// Measures assignment (and redeem) costs in books of growing size, prints them and adds the
/// assignment row to `table`. `quick` leaves out the book of 10,000,000 codes.
fn assign_rows(dir: &Path, quick: bool, table: &mut Table) -> Res<()> {
    let sizes: &[u64] = if quick {
        &[10_000, 1_000_000]
    } else {
        &[10_000, 1_000_000, 10_000_000]
    };
    let costs = assign_costs(dir, sizes)?;
    table.row(
        "assign random, per op: 1M-code book vs 10k-code book",
        costs[1].0,
        costs[0].0,
        "≤ 1.5×",
        costs[1].0 <= 1.5 * costs[0].0,
    );
    for (size, (assign, redeem)) in sizes.iter().zip(&costs) {
        println!(
            "book of {size} codes: assign {} per op, redeem {} per op",
            secs(*assign),
            secs(*redeem)
        );
    }
    Ok(())
}

/// Measures the redeem pair and adds its rows to `table`.
fn redeem_rows(dir: &Path, table: &mut Table) -> Res<()> {
    let (library, raw, with_event) = redeem_rates(dir)?;
    table.ratio_row(
        "redeems per second: library vs raw SQL loop",
        library,
        raw,
        "≥ 0.5×",
        library >= 0.5 * raw,
    );
    table.ratio_row(
        "redeems per second: library vs raw SQL loop also writing the event row",
        library,
        with_event,
        "(for information)",
        true,
    );
    Ok(())
}

/// Builds the release `coupon` binary and returns its path (beside this program's target
/// directory).
fn build_cli() -> Res<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "-p", "coupon-cli"])
        .status()?;
    if !status.success() {
        return Err("building the coupon CLI failed".into());
    }
    // This program runs from <target>/release/deps/.
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    Ok(release.join("coupon"))
}

fn tempfile_dir() -> Res<PathBuf> {
    let dir = std::env::temp_dir().join(format!("coupon-bench-sqlite-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn path(p: &Path) -> Res<&str> {
    p.to_str().ok_or_else(|| "non-UTF-8 path".into())
}

/// Writes a header and `n` distinct random codes of `[A-Z0-9]{12}`, in random order.
fn write_random_codes(file: &Path, n: usize, seed: u64) -> Res<()> {
    let pattern = Pattern::parse("[A-Z0-9]{12}")?;
    let sampler = pattern.sampler();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut seen = HashSet::with_capacity(n);
    let mut out = BufWriter::new(fs::File::create(file)?);
    writeln!(out, "code")?;
    while seen.len() < n {
        let code = sampler.sample(&mut rng);
        if seen.insert(code.clone()) {
            writeln!(out, "{code}")?;
        }
    }
    out.flush()?;
    Ok(())
}

fn write_sorted_copy(from: &Path, to: &Path) -> Res<()> {
    let text = fs::read_to_string(from)?;
    let mut lines: Vec<&str> = text.lines().skip(1).collect();
    lines.sort_unstable();
    let mut out = BufWriter::new(fs::File::create(to)?);
    writeln!(out, "code")?;
    for line in lines {
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

/// A new database made by the CLI, with book 1 (with `pattern`, if any).
fn fresh_db(coupon: &Path, dir: &Path, name: &str, pattern: Option<&str>) -> Res<PathBuf> {
    let db = dir.join(format!("{name}.db"));
    let mut args = vec!["book", "create", "--name", "Bench"];
    if let Some(pattern) = pattern {
        args.extend(["--pattern", pattern]);
    }
    run(Command::new(coupon)
        .arg("--database-url")
        .arg(&db)
        .args(&args))?;
    Ok(db)
}

fn remove_dbs(dir: &Path) -> Res<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?.path();
        if entry.to_string_lossy().contains(".db") {
            fs::remove_file(entry)?;
        }
    }
    Ok(())
}

fn run(command: &mut Command) -> Res<()> {
    let out = command.output()?;
    if !out.status.success() {
        return Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// Runs the CLI on `db` under GNU time: wall seconds and peak resident KiB.
fn timed(coupon: &Path, db: &Path, args: &[&str]) -> Res<(f64, u64)> {
    let report = db.with_extension("time");
    let started = Instant::now();
    run(Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o", path(&report)?])
        .arg(coupon)
        .arg("--database-url")
        .arg(db)
        .args(args))?;
    let secs = started.elapsed().as_secs_f64();
    let rss = fs::read_to_string(&report)?
        .lines()
        .last()
        .ok_or("no report from time")?
        .trim()
        .parse()?;
    fs::remove_file(report)?;
    Ok((secs, rss))
}

/// The `sqlite3` shell loading `csv` into a database made by the CLI: seconds.
fn sqlite3_load(coupon: &Path, dir: &Path, csv: &Path, name: &str) -> Res<f64> {
    let db = fresh_db(coupon, dir, name, None)?;
    let script = format!(
        "PRAGMA journal_mode = WAL;\n\
         PRAGMA synchronous = NORMAL;\n\
         PRAGMA cache_size = -262144;\n\
         BEGIN;\n\
         CREATE TEMP TABLE staging (code TEXT);\n\
         .import --csv --skip 1 {} staging\n\
         INSERT INTO codes (code, book_id, slot, created_at) \
           SELECT code, 1, rowid, 0 FROM staging;\n\
         COMMIT;\n",
        path(csv)?
    );
    let started = Instant::now();
    let mut shell = Command::new("sqlite3")
        .arg(&db)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("the sqlite3 shell is needed: {e}"))?;
    shell
        .stdin
        .take()
        .ok_or("no stdin")?
        .write_all(script.as_bytes())?;
    let out = shell.wait_with_output()?;
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() || !out.stderr.is_empty() {
        // journal_mode prints "wal" on stdout; anything on stderr is a failure.
        return Err(format!(
            "sqlite3 load failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let conn = rusqlite::Connection::open(&db)?;
    let rows: i64 = conn.query_row("SELECT count(*) FROM codes", [], |r| r.get(0))?;
    if rows != 1_000_000 {
        return Err(format!("sqlite3 loaded {rows} rows").into());
    }
    Ok(secs)
}

/// Seconds per random assignment, and per redeem of a code just assigned, in books of each
/// size of `books`: the medians of alternated rounds, in the order of `books`.
fn assign_costs(dir: &Path, books: &[u64]) -> Res<Vec<(f64, f64)>> {
    let stores: Vec<Coupons<SqliteStore>> = books
        .iter()
        .map(|codes| -> Res<_> {
            let db = dir.join(format!("assign-{codes}.db"));
            let coupons = Coupons::new(SqliteStore::open(&db)?);
            let book = coupons.create_book(&BookSettings {
                code_pattern: Some("[A-Z0-9]{12}".into()),
                ..BookSettings::new("Assign")
            })?;
            coupons.generate_codes(book.id, *codes, false)?;
            // The generated book into the database file, its log emptied.
            rusqlite::Connection::open(&db)?.query_row(
                "PRAGMA wal_checkpoint(TRUNCATE)",
                [],
                |_| Ok(()),
            )?;
            Ok(coupons)
        })
        .collect::<Res<_>>()?;
    // The operating system's writing back of those files, not what is measured, done first.
    run(&mut Command::new("sync"))?;
    let per_round = 3000;
    let mut times = vec![(vec![], vec![]); books.len()];
    let request = RedeemRequest::default();
    for round in 0..ROUNDS {
        for (coupons, (assigns, redeems)) in stores.iter().zip(&mut times) {
            let users: Vec<String> = (0..per_round)
                .map(|i| format!("user-{round}-{i}"))
                .collect();
            let started = Instant::now();
            let codes = users
                .iter()
                .map(|user| Ok(coupons.assign_random(1, user, None)?.code))
                .collect::<Res<Vec<_>>>()?;
            assigns.push(started.elapsed().as_secs_f64() / f64::from(per_round));
            let started = Instant::now();
            for (code, user) in codes.iter().zip(&users) {
                coupons.redeem(code, user, &request)?;
            }
            redeems.push(started.elapsed().as_secs_f64() / f64::from(per_round));
        }
    }
    drop(stores);
    remove_dbs(dir)?;
    Ok(times
        .iter()
        .map(|(assigns, redeems)| (median(assigns), median(redeems)))
        .collect())
}

/// Redeems per second through the library, through a raw SQL loop, and through a raw SQL loop
/// that also appends the row a redeem adds (its event, which is also its redemption), on one
/// database of 10,000 assigned codes.
fn redeem_rates(dir: &Path) -> Res<(f64, f64, f64)> {
    let db = dir.join("redeem.db");
    let coupons = Coupons::new(SqliteStore::open(&db)?);
    let book = coupons.create_book(&BookSettings {
        max_redemptions_per_user: 1_000_000,
        ..BookSettings::new("Redeem")
    })?;
    let codes: Vec<String> = (0..10_000).map(|i| format!("R-{i:05}")).collect();
    coupons.import_codes(
        book.id,
        codes
            .iter()
            .enumerate()
            .map(|(i, c)| coupon_core::ImportRow::new(i as u64 + 1, c.clone())),
        false,
    )?;
    for (i, code) in codes.iter().enumerate() {
        coupons.assign_code(code, &format!("user-{i}"))?;
    }
    let raw = rusqlite::Connection::open(&db)?;
    raw.execute_batch(coupon_store_sqlite::CONNECTION_PRAGMAS)?;
    raw.busy_timeout(Duration::from_secs(5))?;
    let span = Duration::from_secs(3);
    let mut rng = StdRng::seed_from_u64(3);
    let (mut library, mut loop_rates, mut with_event) = (vec![], vec![], vec![]);
    let request = RedeemRequest::default();
    for _ in 0..ROUNDS {
        library.push(rate(span, || {
            let i = rng.random_range(0..codes.len());
            coupons.redeem(&codes[i], &format!("user-{i}"), &request)?;
            Ok(())
        })?);
        loop_rates.push(rate(span, || {
            let i = rng.random_range(0..codes.len());
            raw_redeem(&raw, &codes[i], &format!("user-{i}"), false)
        })?);
        with_event.push(rate(span, || {
            let i = rng.random_range(0..codes.len());
            raw_redeem(&raw, &codes[i], &format!("user-{i}"), true)
        })?);
        let last = |v: &[f64]| v.last().copied().unwrap_or_default();
        println!(
            "redeems per second: library {:.0}, raw loop {:.0} ({:.2}×), raw with event {:.0} ({:.2}×)",
            last(&library),
            last(&loop_rates),
            last(&library) / last(&loop_rates),
            last(&with_event),
            last(&library) / last(&with_event),
        );
    }
    drop((coupons, raw));
    remove_dbs(dir)?;
    Ok((median(&library), median(&loop_rates), median(&with_event)))
}

/// Operations per second of `op` run again and again for `span`.
fn rate(span: Duration, mut op: impl FnMut() -> Res<()>) -> Res<f64> {
    let started = Instant::now();
    let mut done = 0u32;
    while started.elapsed() < span {
        op()?;
        done += 1;
    }
    Ok(f64::from(done) / started.elapsed().as_secs_f64())
}

/// The raw loop's redeem: look the code up and count one more, in a write transaction; with
/// `all_rows`, also append the event row a redeem writes (the redemption is that row).
fn raw_redeem(raw: &rusqlite::Connection, code: &str, user: &str, all_rows: bool) -> Res<()> {
    raw.execute_batch("BEGIN IMMEDIATE")?;
    let used: i64 = raw
        .prepare_cached("SELECT redemptions FROM codes WHERE code = ?1")?
        .query_row([code], |r| r.get(0))?;
    raw.prepare_cached("UPDATE codes SET redemptions = ?2 WHERE code = ?1")?
        .execute(rusqlite::params![code, used + 1])?;
    if all_rows {
        raw.prepare_cached(
            "INSERT INTO events (at, kind, book_id, code, user_id, data, remaining) \
             VALUES (0, 'redeemed', 1, ?1, ?2, '{}', 1)",
        )?
        .execute(rusqlite::params![code, user])?;
    }
    raw.execute_batch("COMMIT")?;
    Ok(())
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// The results, printed at the end.
#[derive(Default)]
struct Table {
    rows: Vec<String>,
}

impl Table {
    /// A time of ours beside the reference's.
    fn row(&mut self, what: &str, ours: f64, reference: f64, target: &str, met: bool) {
        self.rows.push(format!(
            "| {what} | {} | {} | {:.2}× | {target} | {} |",
            secs(ours),
            secs(reference),
            ours / reference,
            if met { "met" } else { "MISSED" }
        ));
    }

    /// Any two quantities and their ratio.
    fn ratio_row(&mut self, what: &str, ours: f64, reference: f64, target: &str, met: bool) {
        let verdict = match (target.starts_with('('), met) {
            (true, _) => "",
            (false, true) => "met",
            (false, false) => "MISSED",
        };
        self.rows.push(format!(
            "| {what} | {ours:.0} | {reference:.0} | {:.2}× | {target} | {verdict} |",
            ours / reference,
        ));
    }

    fn info(&mut self, what: &str, ours: f64, reference: f64) {
        self.rows.push(format!(
            "| {what} | {} | {} | {:.2}× | (for information) | |",
            secs(ours),
            secs(reference),
            ours / reference
        ));
    }

    fn print(&self) {
        println!("| measurement | ours | reference | ratio | target | |");
        println!("|---|---|---|---|---|---|");
        for row in &self.rows {
            println!("{row}");
        }
    }
}

fn secs(s: f64) -> String {
    if s < 0.01 {
        format!("{:.1} µs", s * 1e6)
    } else {
        format!("{s:.2} s")
    }
}
