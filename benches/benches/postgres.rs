//! # The Postgres store beside Postgres's own tools, in one run, as ratios
//!
//! ```sh
//! cargo bench -p coupon-benches --bench postgres
//! COUPON_BENCH_POSTGRES_URL=postgres://me@db.test:5432/scratch cargo bench -p coupon-benches --bench postgres
//! COUPON_BENCH_ONLY=scaling cargo bench -p coupon-benches --bench postgres   # how cost grows
//! ```
//!
//! A plain program (no harness) that measures the store and a reference doing the same work
//! on the same server, alternately (ours first in even rounds, the reference first in odd
//! ones), three times, and prints the medians, their ratio and whether the target is met:
//!
//! - **import**: the real `coupon` CLI importing a CSV of 1,000,000 distinct random codes of
//!   `[A-Z0-9]{12}` (header `code`, random order) into a book of a fresh schema
//!   (`coupon codes import BOOK FILE`), beside `psql` loading the same file into an identical
//!   fresh schema (made by the store's migrations, with a book) in one transaction: `\copy`
//!   into a temporary staging table, then one `INSERT INTO codes … SELECT … ORDER BY code`
//!   filling `book_id`, a random 64-bit `slot` and `created_at` as the store does, and the
//!   `codes_added` event into the outbox, as the store does. (`codes` has no defaults for
//!   `book_id` and `slot`, so `\copy` of the file straight into it is not possible.) Sorting
//!   by code makes the reference fastest (the primary key is built in order); it has none of
//!   the store's duplicate handling (a savepoint per batch, and `ON CONFLICT DO NOTHING
//!   RETURNING code` for a batch that meets stored codes). The time of ours is the whole
//!   process: start, connect, read and check the CSV, insert, commit. Target: ours ≤ 1.3 × the
//!   reference.
//! - **redeem**: redeems per second with 8 workers (threads sharing one `Coupons` over a pool
//!   of 8 connections) calling `redeem(code, user, &RedeemRequest::default())` on random codes
//!   of a book of 10,000 codes, each assigned to its user (`max_redemptions_per_user`
//!   1,000,000), beside `pgbench -n -M prepared -c 8 -j 2` running `BEGIN; SELECT … FOR
//!   UPDATE; UPDATE codes SET redemptions = redemptions + 1 …; COMMIT` on random codes of the
//!   same table (the codes are `C-00000001` … `C-00010000`, so pgbench computes them from a
//!   random number). Target: ours ≥ 0.7 × pgbench. A redeem does more than that reference: it
//!   also takes the book's lock shared and reads the book, records a redemption and appends an
//!   event. Two informative rows, from pgbench runs half as long, tell where the difference
//!   goes: pgbench sending the store's own statements of a redeem in the store's three round
//!   trips (`BEGIN`; `coupon_lock_code`; the code's `UPDATE`, the redemption's and the event's
//!   `INSERT` and `COMMIT` pipelined) — the cost of the SQL without our client —, and the same
//!   beside the statements the store sent before its outbox (eight round trips, the event's
//!   `seq` from the one-row event counter locked until commit). The redeem runs leave their
//!   events in the outbox; the time the library then takes to publish them all (one
//!   `events` call) is printed below the table.
//! - **assign**: random assignments per second (`assign_random`, a distinct user per call) in a
//!   fresh book of 200,000 generated codes, with 8 workers beside 1 worker. Target: 8 workers
//!   at least as fast as 1.
//!
//! One more measurement, run only when `COUPON_BENCH_ONLY` names it, has no reference:
//!
//! - **scaling**: how cost grows with the book. For books of 10,000, 1,000,000 and 10,000,000
//!   codes (the last left out with `COUPON_BENCH_QUICK`), each in a fresh schema with one book,
//!   the CLI imports a CSV of that many distinct random codes of `[A-Z0-9]{12}` under GNU
//!   `/usr/bin/time -f %M` (wall time and peak resident memory of the process; a `CHECKPOINT`
//!   first), then the book is `ANALYZE`d. Then one thread, through the library (`Coupons` over a
//!   `PostgresStore` with one connection per book), times single operations: in each round and
//!   book, 1,000 random assignments (`assign_random`, a new user each), then a redeem of each
//!   code just assigned by its user, as the SQLite benchmark does. The books take turns (the
//!   smallest first in even rounds, last in odd ones), after 100 untimed assignments and redeems
//!   per book; the table gives the median of all timed operations per book (the mean beside it)
//!   and the import's time and peak memory. With the 10,000,000-code book it takes several
//!   minutes (mostly that import) and over 3 GB of disk on the server for that book, besides
//!   its WAL.
//!
//! Workers connect and run one untimed operation before the clock starts (pgbench, too,
//! reports its rate without its connection time). The redeem and assignment books are
//! `ANALYZE`d after they are filled. Before each timed import the server is asked for a
//! `CHECKPOINT`, so that neither side pays for the other's dirty pages.
//!
//! # Configuration
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `COUPON_BENCH_POSTGRES_URL` | `postgres://postgres@127.0.0.1:5432/postgres` | the server and database; the role must be allowed to create schemas (and to `CHECKPOINT`, else that is skipped) |
//! | `COUPON_BENCH_SECONDS` | 10 | how long each throughput run lasts |
//! | `COUPON_BENCH_REPEATS` | 3 | how many times each pair is measured |
//! | `COUPON_BENCH_CLI` | (built) | a `coupon` binary to time instead of building one |
//! | `COUPON_BENCH_ONLY` | `import,redeem,assign` | the measurements to run, comma-separated: `import`, `redeem`, `assign`, `scaling` |
//! | `COUPON_BENCH_QUICK` | (unset) | when set, `scaling` leaves out the book of 10,000,000 codes |
//!
//! Without `COUPON_BENCH_CLI` the program runs `cargo build --release -p coupon-cli` (with the
//! `cargo` that runs the benchmark) and takes `coupon` from the release directory of the
//! target directory it runs from (`<target>/release/deps/..`): the binary timed is always the
//! current source, built with the same profile into the same target directory.
//!
//! `psql` and `pgbench` must be on the `PATH` (and GNU time at `/usr/bin/time` for `import`
//! and `scaling`) and the server must answer; otherwise the program says so and exits with
//! status 1. It works in its own schemas, `coupon_bench_*`, which it
//! drops before starting (those left over by an interrupted run) and again when it ends, also
//! after an error. A whole run (without `scaling`) takes four to five minutes.

use std::error::Error;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use coupon_benches::{chain, coupon_cli, env_number, Res};
use coupon_core::{BookId, BookSettings, Coupons, ImportRow, Pattern, RedeemRequest};
use coupon_store_postgres::postgres::{Client, NoTls};
use coupon_store_postgres::{PostgresOptions, PostgresStore};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How many times each pair is measured, unless `COUPON_BENCH_REPEATS` says otherwise.
const REPEATS: usize = 3;
/// How long each throughput run lasts, unless `COUPON_BENCH_SECONDS` says otherwise.
const SECONDS: u64 = 10;
/// The server used unless `COUPON_BENCH_POSTGRES_URL` names another.
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Codes in the imported file.
const IMPORT_CODES: usize = 1_000_000;
/// Assigned codes the redeem workers pick from.
const REDEEM_CODES: u32 = 10_000;
/// Codes in each book of the assignment runs.
const ASSIGN_CODES: u64 = 200_000;
/// Concurrent workers of the redeem runs and of the concurrent assignment runs.
const WORKERS: usize = 8;

/// The schemas this program makes, all dropped at the end.
const IMPORT_OURS: &str = "coupon_bench_import_ours";
const IMPORT_REF: &str = "coupon_bench_import_ref";
const REDEEM: &str = "coupon_bench_redeem";
const ASSIGN: &str = "coupon_bench_assign";
/// The books of the scaling measurement: how many codes each holds, and its schema.
const SCALE_BOOKS: [(u64, &str); 3] = [
    (10_000, "coupon_bench_scale_10k"),
    (1_000_000, "coupon_bench_scale_1m"),
    (10_000_000, "coupon_bench_scale_10m"),
];
const SCHEMAS: [&str; 7] = [
    IMPORT_OURS,
    IMPORT_REF,
    REDEEM,
    ASSIGN,
    SCALE_BOOKS[0].1,
    SCALE_BOOKS[1].1,
    SCALE_BOOKS[2].1,
];
/// Timed assignments (and redeems) per book in each round of the scaling measurement.
const SCALE_OPS: usize = 1_000;
/// Untimed assignments and redeems per book before the scaling measurement's first round.
const SCALE_WARM_UP: usize = 100;
/// GNU time, which reports a process's peak resident memory (`-f %M`, in KiB).
const GNU_TIME: &str = "/usr/bin/time";

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--list") {
        // `cargo bench -- --list` asks for benchmark names; this program has no named ones.
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("postgres benchmark: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Res<()> {
    let url = std::env::var("COUPON_BENCH_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.into());
    let seconds = env_number("COUPON_BENCH_SECONDS", SECONDS)?;
    let repeats = env_number("COUPON_BENCH_REPEATS", REPEATS as u64)?;
    let repeats = usize::try_from(repeats)?;
    if seconds == 0 || repeats == 0 {
        return Err("COUPON_BENCH_SECONDS and COUPON_BENCH_REPEATS must be at least 1".into());
    }
    check_tool("psql")?;
    check_tool("pgbench")?;
    let admin = Client::connect(&url, NoTls).map_err(|e| {
        format!(
            "cannot connect to Postgres at {} ({}); start a server or set \
             COUPON_BENCH_POSTGRES_URL to one",
            redact(&url),
            chain(&e)
        )
    })?;
    let only = Only::from_env()?;
    if only.import || only.scaling {
        check_tool(GNU_TIME)?;
    }
    let cli = if only.import || only.scaling {
        coupon_cli()?
    } else {
        PathBuf::new()
    };
    let dir = std::env::temp_dir().join(format!("coupon-bench-postgres-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let mut bench = Bench {
        url,
        admin,
        cli,
        dir,
        seconds,
        repeats,
        quick: std::env::var_os("COUPON_BENCH_QUICK").is_some(),
    };
    bench.drop_schemas();
    bench.run_all(&only)
}

/// The measurements to run (`COUPON_BENCH_ONLY`).
struct Only {
    import: bool,
    redeem: bool,
    assign: bool,
    scaling: bool,
}

impl Only {
    fn from_env() -> Res<Only> {
        let Ok(text) = std::env::var("COUPON_BENCH_ONLY") else {
            return Ok(Only {
                import: true,
                redeem: true,
                assign: true,
                scaling: false,
            });
        };
        let mut only = Only {
            import: false,
            redeem: false,
            assign: false,
            scaling: false,
        };
        for name in text.split(',').map(str::trim) {
            match name {
                "import" => only.import = true,
                "redeem" => only.redeem = true,
                "assign" => only.assign = true,
                "scaling" => only.scaling = true,
                _ => {
                    return Err(format!(
                        "COUPON_BENCH_ONLY names {name:?}; use import, redeem, assign or \
                         scaling, comma-separated"
                    )
                    .into())
                }
            }
        }
        Ok(only)
    }
}

/// Everything the measurements share.
struct Bench {
    url: String,
    admin: Client,
    cli: PathBuf,
    dir: PathBuf,
    seconds: u64,
    repeats: usize,
    /// `COUPON_BENCH_QUICK`: the scaling measurement leaves out the book of 10,000,000 codes.
    quick: bool,
}

impl Drop for Bench {
    /// Leaves nothing behind, whether the run succeeded, failed or panicked.
    fn drop(&mut self) {
        self.drop_schemas();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Bench {
    fn run_all(&mut self, only: &Only) -> Res<()> {
        let started = Instant::now();
        println!(
            "Postgres benchmark on {}: {} repeats, {} s per throughput run",
            redact(&self.url),
            self.repeats,
            self.seconds
        );
        let mut table = Table::default();

        if only.import {
            self.measure_import(&mut table)?;
        }
        if only.redeem {
            self.measure_redeem(&mut table)?;
        }
        if only.assign {
            self.measure_assign(&mut table)?;
        }
        let scaling = if only.scaling {
            self.measure_scaling()?
        } else {
            String::new()
        };

        println!();
        if !table.rows.is_empty() {
            println!(
                "Medians of {} alternated runs ({:.0} s in all):",
                self.repeats,
                started.elapsed().as_secs_f64()
            );
            println!();
            table.print();
        }
        if !scaling.is_empty() {
            if !table.rows.is_empty() {
                println!();
            }
            println!(
                "How cost grows ({:.0} s in all): the CLI's import of the book's codes, then \
                 the medians of {} single operations per book, {} rounds alternating the books:",
                started.elapsed().as_secs_f64(),
                self.repeats * SCALE_OPS,
                self.repeats
            );
            println!();
            print!("{scaling}");
        }
        Ok(())
    }

    /// How cost grows with the book: for books of 10,000, 1,000,000 and (without
    /// `COUPON_BENCH_QUICK`) 10,000,000 codes, each in a fresh schema filled by the CLI's
    /// import (timed, with its peak memory), the time of a random assignment to a new user and
    /// of a redeem of the code just assigned, one thread through the library. Returns the
    /// table, in Markdown.
    fn measure_scaling(&mut self) -> Res<String> {
        let sizes: Vec<(u64, &str)> = SCALE_BOOKS
            .into_iter()
            .filter(|&(codes, _)| !self.quick || codes < 10_000_000)
            .collect();
        if self.quick {
            println!("(COUPON_BENCH_QUICK: the book of 10,000,000 codes is left out)");
        }
        let mut books = Vec::with_capacity(sizes.len());
        for (codes, schema) in sizes {
            let csv = self.dir.join(format!("scale-{codes}.csv"));
            write_random_codes(&csv, usize::try_from(codes)?)?;
            let book = self.fresh_book(schema)?;
            self.checkpoint();
            let (secs, kib) = self.import_peak(schema, book, &csv)?;
            fs::remove_file(&csv)?;
            self.check_count(schema, usize::try_from(codes)?)?;
            self.analyze(schema)?;
            println!(
                "scaling: imported {codes} codes in {secs:.2} s, peak {:.0} MiB",
                kib as f64 / 1024.0
            );
            books.push(ScaleBook {
                codes,
                book,
                coupons: Coupons::new(self.store(schema, 1)?),
                import_secs: secs,
                import_kib: kib,
                assigns: Vec::with_capacity(self.repeats * SCALE_OPS),
                redeems: Vec::with_capacity(self.repeats * SCALE_OPS),
            });
        }
        // Untimed: each connection opens and prepares its statements.
        let request = RedeemRequest::default();
        for b in &books {
            for i in 0..SCALE_WARM_UP {
                let user = format!("warm-up-{i}");
                let code = b.coupons.assign_random(b.book, &user, None)?.code;
                b.coupons.redeem(&code, &user, &request)?;
            }
        }
        for round in 0..self.repeats {
            // The books in turn, the smallest first in even rounds and last in odd ones.
            let turn: Vec<usize> = if round % 2 == 0 {
                (0..books.len()).collect()
            } else {
                (0..books.len()).rev().collect()
            };
            for i in turn {
                let b = &mut books[i];
                let users: Vec<String> = (0..SCALE_OPS)
                    .map(|n| format!("user-{round}-{n}"))
                    .collect();
                let mut codes = Vec::with_capacity(SCALE_OPS);
                for user in &users {
                    let start = Instant::now();
                    let code = b.coupons.assign_random(b.book, user, None)?.code;
                    b.assigns.push(start.elapsed().as_secs_f64());
                    codes.push(code);
                }
                for (code, user) in codes.iter().zip(&users) {
                    let start = Instant::now();
                    b.coupons.redeem(code, user, &request)?;
                    b.redeems.push(start.elapsed().as_secs_f64());
                }
                let last = |v: &[f64]| v[v.len() - SCALE_OPS..].iter().sum::<f64>();
                println!(
                    "scaling {round}: book of {:>10} codes: assign {:6.0} µs, redeem {:6.0} µs \
                     (means of {SCALE_OPS})",
                    b.codes,
                    last(&b.assigns) / SCALE_OPS as f64 * 1e6,
                    last(&b.redeems) / SCALE_OPS as f64 * 1e6,
                );
            }
        }
        let mut text = String::new();
        let _ = writeln!(
            text,
            "| codes in the book | import (CLI) | import peak memory | assign per op | \
             redeem per op |"
        );
        let _ = writeln!(text, "|---|---|---|---|---|");
        for b in &mut books {
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64 * 1e6;
            let (assign_mean, redeem_mean) = (mean(&b.assigns), mean(&b.redeems));
            let _ = writeln!(
                text,
                "| {} | {:.2} s | {:.0} MiB | {:.0} µs (mean {assign_mean:.0}) | {:.0} µs \
                 (mean {redeem_mean:.0}) |",
                thousands(b.codes),
                b.import_secs,
                b.import_kib as f64 / 1024.0,
                median(&mut b.assigns) * 1e6,
                median(&mut b.redeems) * 1e6,
            );
        }
        drop(books);
        for (_, schema) in SCALE_BOOKS {
            self.drop_schema(schema);
        }
        Ok(text)
    }

    /// Import: the CLI beside psql, alternately.
    fn measure_import(&mut self, table: &mut Table) -> Res<()> {
        let csv = self.dir.join("codes.csv");
        write_random_codes(&csv, IMPORT_CODES)?;
        let (mut ours, mut reference) = (vec![], vec![]);
        for round in 0..self.repeats {
            for side in order(round) {
                if side == 0 {
                    let t = self.import_ours(&csv)?;
                    println!("import {round}: coupon codes import   {t:6.2} s");
                    ours.push(t);
                } else {
                    let t = self.import_reference(&csv)?;
                    println!("import {round}: psql \\copy + INSERT   {t:6.2} s");
                    reference.push(t);
                }
            }
        }
        let (ours, reference) = (median(&mut ours), median(&mut reference));
        table.push(Row {
            what: "import 1,000,000 codes (CLI vs psql `\\copy` + `INSERT … SELECT`), seconds",
            ours: format!("{ours:.2} s"),
            reference: format!("{reference:.2} s"),
            ratio: ours / reference,
            target: Some(Target::AtMost(1.3)),
        });
        let _ = fs::remove_file(&csv);
        Ok(())
    }

    /// Redeem: 8 threads through the library beside pgbench.
    fn measure_redeem(&mut self, table: &mut Table) -> Res<()> {
        let (coupons, book) = self.redeem_setup()?;
        let simple = self.write_script("redeem.sql", &pgbench_redeem_simple())?;
        let store = self.write_script("redeem-store.sql", &pgbench_redeem_as_store(book))?;
        let before = self.write_script("redeem-before.sql", &pgbench_redeem_before(book))?;
        // The informative runs take half as long, to keep the whole run under five minutes.
        let info_seconds = self.seconds.div_ceil(2);
        let (mut ours, mut reference) = (vec![], vec![]);
        let (mut store_sql, mut before_sql) = (vec![], vec![]);
        for round in 0..self.repeats {
            for side in order(round) {
                if side == 0 {
                    let rate = self.redeem_ours(&coupons)?;
                    println!(
                        "redeem {round}: ours, {WORKERS} workers                    {rate:8.0}/s"
                    );
                    ours.push(rate);
                } else {
                    let rate = self.pgbench(REDEEM, &simple, self.seconds)?;
                    println!("redeem {round}: pgbench SELECT … FOR UPDATE + UPDATE {rate:8.0}/s");
                    reference.push(rate);
                }
            }
            let rate = self.pgbench(REDEEM, &store, info_seconds)?;
            println!("redeem {round}: pgbench, the store's statements       {rate:8.0}/s");
            store_sql.push(rate);
            let rate = self.pgbench(REDEEM, &before, info_seconds)?;
            println!("redeem {round}: pgbench, the statements sent before   {rate:8.0}/s");
            before_sql.push(rate);
        }
        let pending: i64 = self
            .admin
            .query_one(
                &format!("SELECT count(*) FROM {REDEEM}.pending_events"),
                &[],
            )?
            .try_get(0)?;
        let start = Instant::now();
        coupons.events(0, 1)?;
        let took = start.elapsed().as_secs_f64();
        table.note(format!(
            "Publishing the events of the redeem runs: the library's next `events` call moved \
             {pending} pending events into the log in {took:.2} s ({:.0}/s).",
            pending as f64 / took
        ));
        drop(coupons);
        let (ours, reference) = (median(&mut ours), median(&mut reference));
        table.push(Row {
            what: "redeem, 8 workers: library vs pgbench `SELECT … FOR UPDATE` + `UPDATE`, per second",
            ours: format!("{ours:.0}/s"),
            reference: format!("{reference:.0}/s"),
            ratio: ours / reference,
            target: Some(Target::AtLeast(0.7)),
        });
        let store_sql = median(&mut store_sql);
        table.push(Row {
            what: "(information) redeem, 8 workers: library vs pgbench sending the store's statements in its 3 round trips",
            ours: format!("{ours:.0}/s"),
            reference: format!("{store_sql:.0}/s"),
            ratio: ours / store_sql,
            target: None,
        });
        let before_sql = median(&mut before_sql);
        table.push(Row {
            what: "(information) pgbench, the store's statements: now (3 round trips, outbox) vs before (8, event counter)",
            ours: format!("{store_sql:.0}/s"),
            reference: format!("{before_sql:.0}/s"),
            ratio: store_sql / before_sql,
            target: None,
        });
        self.drop_schema(REDEEM);
        Ok(())
    }

    /// Random assignment: 8 workers beside 1, each run on a fresh book.
    fn measure_assign(&mut self, table: &mut Table) -> Res<()> {
        let coupons = self.assign_setup()?;
        let (mut eight, mut one) = (vec![], vec![]);
        for round in 0..self.repeats {
            for side in order(round) {
                let workers = if side == 0 { WORKERS } else { 1 };
                let rate = self.assign_run(&coupons, workers)?;
                println!("assign {round}: {workers} worker(s)              {rate:8.0}/s");
                if side == 0 {
                    eight.push(rate);
                } else {
                    one.push(rate);
                }
            }
        }
        drop(coupons);
        let (eight, one) = (median(&mut eight), median(&mut one));
        table.push(Row {
            what: "random assign in a book of 200,000 codes: 8 workers vs 1 worker, per second",
            ours: format!("{eight:.0}/s"),
            reference: format!("{one:.0}/s"),
            ratio: eight / one,
            target: Some(Target::AtLeast(1.0)),
        });
        Ok(())
    }

    /// Times the CLI importing `csv` into a fresh schema with one book.
    fn import_ours(&mut self, csv: &Path) -> Res<f64> {
        let book = self.fresh_book(IMPORT_OURS)?;
        self.checkpoint();
        let (elapsed, _) = self.import_peak(IMPORT_OURS, book, csv)?;
        self.check_count(IMPORT_OURS, IMPORT_CODES)?;
        self.drop_schema(IMPORT_OURS);
        Ok(elapsed)
    }

    /// Runs the CLI importing `csv` into `book` of `schema` under GNU time: wall seconds and
    /// peak resident memory in KiB.
    fn import_peak(&self, schema: &str, book: BookId, csv: &Path) -> Res<(f64, u64)> {
        let report = self.dir.join("import.time");
        let elapsed = timed(
            "coupon codes import",
            Command::new(GNU_TIME)
                .arg("-f")
                .arg("%M")
                .arg("-o")
                .arg(&report)
                .arg(&self.cli)
                .arg("--database-url")
                .arg(schema_url(&self.url, schema))
                .args(["codes", "import", &book.to_string()])
                .arg(csv)
                .stdin(Stdio::null()),
        )?;
        let kib = fs::read_to_string(&report)?
            .lines()
            .last()
            .and_then(|line| line.trim().parse().ok())
            .ok_or("GNU time reported no peak memory")?;
        fs::remove_file(&report)?;
        Ok((elapsed, kib))
    }

    /// Times psql loading `csv` into a fresh schema with one book, in one transaction.
    fn import_reference(&mut self, csv: &Path) -> Res<f64> {
        let book = self.fresh_book(IMPORT_REF)?;
        // The file arrives on psql's standard input (`pstdin`): no path to quote in the script.
        let script = self.write_script(
            "import.sql",
            &format!(
                "BEGIN;\n\
                 SET LOCAL search_path = {IMPORT_REF};\n\
                 CREATE TEMPORARY TABLE staging (code text COLLATE \"C\" NOT NULL) ON COMMIT DROP;\n\
                 \\copy staging (code) FROM pstdin WITH (FORMAT csv, HEADER true)\n\
                 INSERT INTO codes (code, book_id, slot, created_at)\n  \
                   SELECT code, {book}, ((random() * 2 - 1) * 9.2e18)::bigint, now()\n  \
                   FROM staging ORDER BY code;\n\
                 INSERT INTO pending_events (at, kind, book_id, data)\n  \
                   VALUES (now(), 'codes_added', {book}, \
                   '{{\"count\": {IMPORT_CODES}, \"source\": \"import\"}}');\n\
                 COMMIT;\n"
            ),
        )?;
        self.checkpoint();
        let elapsed = timed(
            "the psql import",
            Command::new("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &self.url, "-f"])
                .arg(&script)
                .stdin(fs::File::open(csv)?),
        )?;
        self.check_count(IMPORT_REF, IMPORT_CODES)?;
        self.drop_schema(IMPORT_REF);
        Ok(elapsed)
    }

    /// A book of 10,000 codes `C-00000001`…, each assigned to its user `U-00000001`…, that
    /// each user may redeem a million times; and the service over a pool of 8 connections.
    fn redeem_setup(&mut self) -> Res<(Coupons<PostgresStore>, BookId)> {
        self.drop_schema(REDEEM);
        let coupons = Coupons::new(self.store(REDEEM, WORKERS)?);
        let book = coupons.create_book(&BookSettings {
            max_redemptions_per_user: 1_000_000,
            ..BookSettings::new("redeem benchmark")
        })?;
        let rows = (1..=REDEEM_CODES).map(|i| ImportRow::new(u64::from(i), redeem_code(i)));
        let report = coupons.import_codes(book.id, rows, false)?;
        if report.inserted != u64::from(REDEEM_CODES) {
            return Err(format!("the redeem book has {} codes", report.inserted).into());
        }
        std::thread::scope(|s| {
            let workers: Vec<_> = (0..WORKERS as u32)
                .map(|w| {
                    let coupons = &coupons;
                    s.spawn(move || {
                        for i in (1..=REDEEM_CODES).filter(|i| i % WORKERS as u32 == w) {
                            coupons.assign_code(&redeem_code(i), &redeem_user(i))?;
                        }
                        Ok::<(), coupon_core::Error>(())
                    })
                })
                .collect();
            for worker in workers {
                worker
                    .join()
                    .map_err(|_| "an assigning thread panicked")??;
            }
            Ok::<(), Box<dyn Error + Send + Sync>>(())
        })?;
        self.analyze(REDEEM)?;
        Ok((coupons, book.id))
    }

    /// Redeems per second of 8 threads on random codes of the redeem book.
    fn redeem_ours(&self, coupons: &Coupons<PostgresStore>) -> Res<f64> {
        let request = RedeemRequest::default();
        hammer(WORKERS, self.duration(), |_, _| {
            let i = rand::rng().random_range(1..=REDEEM_CODES);
            coupons
                .redeem(&redeem_code(i), &redeem_user(i), &request)
                .map(drop)
        })
    }

    /// The schema of the assignment runs and the service over a pool of 8 connections.
    fn assign_setup(&mut self) -> Res<Coupons<PostgresStore>> {
        self.drop_schema(ASSIGN);
        Ok(Coupons::new(self.store(ASSIGN, WORKERS)?))
    }

    /// Random assignments per second of `workers` threads in a fresh book of 200,000 codes, a
    /// new user per call.
    fn assign_run(&mut self, coupons: &Coupons<PostgresStore>, workers: usize) -> Res<f64> {
        let book = coupons.create_book(&BookSettings {
            code_pattern: Some("[A-Z0-9]{12}".into()),
            ..BookSettings::new(format!("assign benchmark, {workers} worker(s)"))
        })?;
        coupons.generate_codes(book.id, ASSIGN_CODES, false)?;
        self.analyze(ASSIGN)?;
        hammer(workers, self.duration(), |worker, n| {
            coupons
                .assign_random(book.id, &format!("user-{worker}-{n}"), None)
                .map(drop)
        })
    }

    /// Transactions per second of `pgbench -c 8 -j 2` running `script` in `schema` for
    /// `seconds`.
    fn pgbench(&self, schema: &str, script: &Path, seconds: u64) -> Res<f64> {
        let out = Command::new("pgbench")
            .args(["-n", "-M", "prepared", "-j", "2"])
            .args(["-c", &WORKERS.to_string(), "-T", &seconds.to_string()])
            .arg("-f")
            .arg(script)
            .arg(&self.url)
            .env("PGOPTIONS", format!("-c search_path={schema}"))
            .stdin(Stdio::null())
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let failed = stdout
            .lines()
            .find_map(|l| l.strip_prefix("number of failed transactions: "))
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|n| n != "0");
        let tps = stdout
            .lines()
            .find_map(|l| l.strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok());
        match tps {
            Some(tps) if out.status.success() && !failed => Ok(tps),
            _ => Err(format!(
                "pgbench failed ({}): {}{}",
                out.status,
                stdout.trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into()),
        }
    }

    fn duration(&self) -> Duration {
        Duration::from_secs(self.seconds)
    }

    /// A store on `schema` (created and migrated when missing) with a pool of `pool_size`.
    fn store(&self, schema: &str, pool_size: usize) -> Res<PostgresStore> {
        let options = PostgresOptions {
            pool_size: u32::try_from(pool_size)?,
            schema: Some(schema.into()),
            ..PostgresOptions::default()
        };
        Ok(PostgresStore::open_with(&self.url, options)?)
    }

    /// Drops and recreates `schema` with the store's tables and one book; returns its id.
    fn fresh_book(&mut self, schema: &str) -> Res<BookId> {
        self.drop_schema(schema);
        let coupons = Coupons::new(self.store(schema, 1)?);
        Ok(coupons
            .create_book(&BookSettings::new("import benchmark"))?
            .id)
    }

    fn check_count(&mut self, schema: &str, expected: usize) -> Res<()> {
        let row = self
            .admin
            .query_one(&format!("SELECT count(*) FROM {schema}.codes"), &[])?;
        let count: i64 = row.try_get(0)?;
        if usize::try_from(count)? != expected {
            return Err(format!("{schema}.codes holds {count} codes, not {expected}").into());
        }
        Ok(())
    }

    fn analyze(&mut self, schema: &str) -> Res<()> {
        Ok(self
            .admin
            .batch_execute(&format!("ANALYZE {schema}.codes"))?)
    }

    /// Flushes dirty pages now, so that the next timed run does not pay for earlier ones.
    /// Skipped when the role may not (it needs superuser or `pg_checkpoint`).
    fn checkpoint(&mut self) {
        let _ = self.admin.batch_execute("CHECKPOINT");
    }

    fn drop_schema(&mut self, schema: &str) {
        if let Err(e) = self
            .admin
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        {
            eprintln!("postgres benchmark: cannot drop schema {schema}: {e}");
        }
    }

    fn drop_schemas(&mut self) {
        for schema in SCHEMAS {
            self.drop_schema(schema);
        }
    }

    fn write_script(&self, name: &str, text: &str) -> Res<PathBuf> {
        let path = self.dir.join(name);
        fs::write(&path, text)?;
        Ok(path)
    }
}

/// A book of the scaling measurement and its timings, in seconds.
struct ScaleBook {
    codes: u64,
    book: BookId,
    coupons: Coupons<PostgresStore>,
    import_secs: f64,
    import_kib: u64,
    assigns: Vec<f64>,
    redeems: Vec<f64>,
}

/// `n` with a comma between groups of three digits.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut text = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            text.push(',');
        }
        text.push(digit);
    }
    text
}

/// Runs `command` to its end and returns its wall time in seconds; `what` names it when it
/// fails, with its standard error.
fn timed(what: &str, command: &mut Command) -> Res<f64> {
    let start = Instant::now();
    let out = command.output()?;
    let elapsed = start.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(elapsed)
}

/// The two sides of a pair in the order of `round`: ours first in even rounds.
fn order(round: usize) -> [usize; 2] {
    if round % 2 == 0 {
        [0, 1]
    } else {
        [1, 0]
    }
}

/// Runs `op(worker, n)` on `workers` threads for `duration` and returns completed operations
/// per second. Each worker runs one untimed operation first (it opens its connection and
/// prepares its statements), then all start together.
fn hammer(
    workers: usize,
    duration: Duration,
    op: impl Fn(usize, u64) -> coupon_core::Result<()> + Sync,
) -> Res<f64> {
    let barrier = Barrier::new(workers);
    let results: Vec<Res<(u64, Duration)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let (op, barrier) = (&op, &barrier);
                s.spawn(move || {
                    let warm = op(worker, 0);
                    barrier.wait();
                    warm?;
                    let start = Instant::now();
                    let mut done = 0;
                    while start.elapsed() < duration {
                        op(worker, done + 1)?;
                        done += 1;
                    }
                    Ok((done, start.elapsed()))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a worker panicked".into())))
            .collect()
    });
    let mut total = 0;
    let mut longest = Duration::ZERO;
    for result in results {
        let (done, elapsed) = result?;
        total += done;
        longest = longest.max(elapsed);
    }
    Ok(total as f64 / longest.as_secs_f64())
}

/// The redeem reference: lock the code's row, count one use, commit.
fn pgbench_redeem_simple() -> String {
    format!(
        "\\set id random(1, {REDEEM_CODES})\n\
         BEGIN;\n\
         SELECT code, owner, redemptions FROM codes \
         WHERE code = 'C-' || lpad(:id::text, 8, '0') FOR UPDATE;\n\
         UPDATE codes SET redemptions = redemptions + 1 \
         WHERE code = 'C-' || lpad(:id::text, 8, '0');\n\
         COMMIT;\n"
    )
}

/// What the store sends for one redeem of an assigned code, in its three round trips:
/// `BEGIN`; lock the code, take its book's lock shared and read the book (`coupon_lock_code`);
/// save the code, record the redemption, put the event into the outbox and commit, pipelined
/// (the store sends these four in one message).
fn pgbench_redeem_as_store(book: BookId) -> String {
    format!(
        "\\set id random(1, {REDEEM_CODES})\n\
         BEGIN ISOLATION LEVEL READ COMMITTED;\n\
         SELECT (c).code, (c).book_id, (c).owner, (c).assigned_at, (c).redemptions, \
         (c).lock_token, (c).lock_expires_at, (c).voided_at, (b).id, (b).name, (b).description, \
         (b).valid_from, (b).valid_until, (b).max_redemptions_per_user, (b).max_codes_per_user, \
         (b).code_pattern, (b).lock_ttl_seconds, (b).created_at, (b).updated_at \
         FROM coupon_lock_code('C-' || lpad(:id::text, 8, '0'));\n\
         \\startpipeline\n\
         UPDATE codes SET owner = 'U-' || lpad(:id::text, 8, '0'), assigned_at = assigned_at, \
         redemptions = redemptions + 1, lock_token = NULL, lock_expires_at = NULL, \
         voided_at = NULL WHERE code = 'C-' || lpad(:id::text, 8, '0');\n\
         INSERT INTO redemptions (code, user_id, order_id, context, redeemed_at, redemptions, \
         remaining) VALUES ('C-' || lpad(:id::text, 8, '0'), 'U-' || lpad(:id::text, 8, '0'), \
         NULL, NULL, now(), 1, 999999);\n\
         INSERT INTO pending_events (at, kind, book_id, code, user_id, data) \
         VALUES (now(), 'redeemed', {book}, 'C-' || lpad(:id::text, 8, '0'), \
         'U-' || lpad(:id::text, 8, '0'), \
         '{{\"order_id\": null, \"context\": null, \"redemptions\": 1}}');\n\
         COMMIT;\n\
         \\endpipeline\n"
    )
}

/// What the store sent for one redeem of an assigned code before its event outbox, statement
/// by statement: lock and read the code, take the book's lock shared, read the book, save the
/// code, record the redemption, append the event (locking the one-row event counter until
/// commit), commit.
fn pgbench_redeem_before(book: BookId) -> String {
    format!(
        "\\set id random(1, {REDEEM_CODES})\n\
         BEGIN ISOLATION LEVEL READ COMMITTED;\n\
         SELECT code, book_id, owner, assigned_at, redemptions, lock_token, lock_expires_at, \
         voided_at FROM codes WHERE code = 'C-' || lpad(:id::text, 8, '0') FOR UPDATE;\n\
         SELECT pg_advisory_xact_lock_shared(1651470187, \
         hashtext(current_schema() || '/' || {book}::bigint::text));\n\
         SELECT id, name, description, valid_from, valid_until, max_redemptions_per_user, \
         max_codes_per_user, code_pattern, lock_ttl_seconds, created_at, updated_at \
         FROM books WHERE id = {book};\n\
         UPDATE codes SET owner = 'U-' || lpad(:id::text, 8, '0'), assigned_at = assigned_at, \
         redemptions = redemptions + 1, lock_token = NULL, lock_expires_at = NULL, \
         voided_at = NULL WHERE code = 'C-' || lpad(:id::text, 8, '0');\n\
         INSERT INTO redemptions (code, user_id, order_id, context, redeemed_at, redemptions, \
         remaining) VALUES ('C-' || lpad(:id::text, 8, '0'), 'U-' || lpad(:id::text, 8, '0'), \
         NULL, NULL, now(), 1, 999999);\n\
         WITH next AS (UPDATE event_counter SET last = last + 1 RETURNING last) \
         INSERT INTO events (seq, at, kind, book_id, code, user_id, data) \
         SELECT last, now(), 'redeemed', {book}, 'C-' || lpad(:id::text, 8, '0'), \
         'U-' || lpad(:id::text, 8, '0'), \
         '{{\"order_id\": null, \"context\": null, \"redemptions\": 1}}' FROM next \
         RETURNING seq;\n\
         COMMIT;\n"
    )
}

fn redeem_code(i: u32) -> String {
    format!("C-{i:08}")
}

fn redeem_user(i: u32) -> String {
    format!("U-{i:08}")
}

/// Writes a header and `n` distinct random codes of `[A-Z0-9]{12}`, in the order drawn.
fn write_random_codes(file: &Path, n: usize) -> Res<()> {
    let pattern = Pattern::parse("[A-Z0-9]{12}")?;
    let sampler = pattern.sampler();
    let mut rng = StdRng::from_os_rng();
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut out = BufWriter::new(fs::File::create(file)?);
    writeln!(out, "code")?;
    while seen.len() < n {
        let code = sampler.sample(&mut rng);
        if !seen.contains(&code) {
            writeln!(out, "{code}")?;
            seen.insert(code);
        }
    }
    out.flush()?;
    Ok(())
}

/// Fails clearly when `tool` cannot be run.
fn check_tool(tool: &str) -> Res<()> {
    match Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("`{tool} --version` failed ({status})").into()),
        Err(e) => Err(format!(
            "cannot run {tool} ({e}); this benchmark compares the store with psql and pgbench: \
             install the PostgreSQL client tools and put them on the PATH"
        )
        .into()),
    }
}

/// `url` with the store's `schema` parameter added.
fn schema_url(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((login, host)) if login.contains(':') => {
            let user = login.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// A target on the ratio ours / reference.
#[derive(Clone, Copy)]
enum Target {
    AtMost(f64),
    AtLeast(f64),
}

struct Row {
    what: &'static str,
    ours: String,
    reference: String,
    ratio: f64,
    target: Option<Target>,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Table {
    fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    /// A line printed below the table.
    fn note(&mut self, text: String) {
        self.notes.push(text);
    }

    fn print(&self) {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "| measurement | ours | reference | ratio | target | met? |"
        );
        let _ = writeln!(text, "|---|---|---|---|---|---|");
        for row in &self.rows {
            let (target, met) = match row.target {
                Some(Target::AtMost(t)) => (format!("≤ {t:.2}×"), yes_no(row.ratio <= t)),
                Some(Target::AtLeast(t)) => (format!("≥ {t:.2}×"), yes_no(row.ratio >= t)),
                None => ("—".to_owned(), "—"),
            };
            let _ = writeln!(
                text,
                "| {} | {} | {} | {:.2}× | {target} | {met} |",
                row.what, row.ours, row.reference, row.ratio
            );
        }
        for note in &self.notes {
            let _ = writeln!(text, "\n{note}");
        }
        print!("{text}");
    }
}

fn yes_no(met: bool) -> &'static str {
    if met {
        "yes"
    } else {
        "NO"
    }
}
