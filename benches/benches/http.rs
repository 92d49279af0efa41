//! # The HTTP service beside the library, in one run, as ratios
//!
//! ```sh
//! cargo bench -p coupon-benches --bench http
//! ```
//!
//! For each backend — an SQLite file, and the Postgres server at `COUPON_BENCH_POSTGRES_URL`
//! when one answers — the program fills a database through the library, starts the real
//! `coupon serve --rate-limit 0` on it (the rate limit is off so that it does not cap the
//! figures; logging stays at its default, one line per request) and measures, one after the
//! other:
//!
//! - **assign over HTTP**: `POST /coupons/assign` with a new user in every request, from `wrk`
//!   with 64 connections (2 threads, a Lua script making the bodies), for
//!   `COUPON_BENCH_SECONDS`;
//! - **assign in the library**: 64 threads calling `Coupons::assign_random` with a new user each
//!   time on the same database, over a store with the pool the server opens;
//! - **redeem over HTTP**: `POST /coupons/redeem/{code}` of a random one of 10,000 codes, each
//!   assigned to its user, in a book allowing 1,000,000,000 redemptions per user;
//! - **redeem in the library**: 64 threads calling `Coupons::redeem` the same way.
//!
//! It prints requests per second, the median and 99th-percentile latency of each, and the
//! ratio of HTTP to library throughput, and counts the answers that were not 200 (there must be
//! none). A client key is created for `wrk`; every request is authenticated as in production.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `COUPON_BENCH_SECONDS` | 10 | how long each measurement lasts |
//! | `COUPON_BENCH_POSTGRES_URL` | `postgres://postgres@127.0.0.1:5432/postgres` | the Postgres server; skipped with a notice when it does not answer |
//! | `COUPON_BENCH_CLI` | (built) | a `coupon` binary to run instead of building one |
//!
//! `wrk` must be on the `PATH`. On Postgres the program works in the schema
//! `coupon_bench_http`, dropped before and after.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use coupon_benches::{chain, coupon_cli, env_number, percentile, Res};
use coupon_core::apikey::Role;
use coupon_core::store::CouponStore;
use coupon_core::{BookId, BookSettings, Coupons, ImportRow, RedeemRequest};
use coupon_store_postgres::postgres::{Client, NoTls};
use coupon_store_postgres::{PostgresOptions, PostgresStore};
use coupon_store_sqlite::{SqliteOptions, SqliteStore};
use rand::Rng;

/// Concurrent connections of `wrk`, and threads of the library side.
const CONNECTIONS: usize = 64;
/// The connections of the store `coupon serve` opens; the library side opens as many.
const POOL: u32 = 16;
/// Codes in the book of random assignments: more than any run hands out.
const ASSIGN_CODES: u64 = 1_000_000;
/// Codes in the book of redeems, each assigned to its own user.
const REDEEM_CODES: u32 = 10_000;
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const SCHEMA: &str = "coupon_bench_http";

fn main() -> ExitCode {
    if std::env::args().any(|a| a == "--list") {
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("http benchmark: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Res<()> {
    let seconds = env_number("COUPON_BENCH_SECONDS", 10)?;
    if seconds == 0 {
        return Err("COUPON_BENCH_SECONDS must be at least 1".into());
    }
    let span = Duration::from_secs(seconds);
    check_wrk()?;
    let cli = coupon_cli()?;
    let dir = std::env::temp_dir().join(format!("coupon-bench-http-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let mut table = String::new();
    let sqlite_url = format!("sqlite://{}", dir.join("coupons.db").display());
    let sqlite = SqliteStore::open_with(
        dir.join("coupons.db"),
        SqliteOptions {
            pool_size: POOL,
            ..SqliteOptions::default()
        },
    )?;
    let result = measure("SQLite", sqlite, &sqlite_url, &cli, &dir, span, &mut table);
    let postgres =
        std::env::var("COUPON_BENCH_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.into());
    let result = result.and_then(|()| match Client::connect(&postgres, NoTls) {
        Ok(mut admin) => {
            admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))?;
            let url = format!(
                "{postgres}{}schema={SCHEMA}",
                if postgres.contains('?') { '&' } else { '?' }
            );
            let store = PostgresStore::open_with(
                &url,
                PostgresOptions {
                    pool_size: POOL,
                    ..PostgresOptions::default()
                },
            )?;
            let result = measure("Postgres", store, &url, &cli, &dir, span, &mut table);
            admin.batch_execute(&format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))?;
            result
        }
        Err(e) => {
            println!("Postgres skipped: cannot connect ({})", chain(&e));
            Ok(())
        }
    });
    let _ = fs::remove_dir_all(&dir);
    result?;
    println!(
        "\n| backend | operation | HTTP req/s | p50 | p99 | library op/s | p50 | p99 | HTTP / library |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    print!("{table}");
    Ok(())
}

/// Fills the store, starts the server on it and measures both operations both ways.
fn measure<S: CouponStore + 'static>(
    backend: &str,
    store: S,
    url: &str,
    cli: &Path,
    dir: &Path,
    span: Duration,
    table: &mut String,
) -> Res<()> {
    println!("{backend}: filling the books");
    let coupons = Arc::new(Coupons::new(store));
    let assign_book = coupons
        .create_book(&BookSettings {
            code_pattern: Some("A-[A-Z0-9]{10}".into()),
            ..BookSettings::new("assign")
        })?
        .id;
    coupons.generate_codes(assign_book, ASSIGN_CODES, false)?;
    let redeem_book = coupons
        .create_book(&BookSettings {
            max_redemptions_per_user: 1_000_000_000,
            ..BookSettings::new("redeem")
        })?
        .id;
    coupons.import_codes(
        redeem_book,
        (1..=REDEEM_CODES).map(|i| ImportRow::new(u64::from(i), redeem_code(i))),
        false,
    )?;
    for i in 1..=REDEEM_CODES {
        coupons.assign_code(&redeem_code(i), &redeem_user(i))?;
    }
    let key = coupons.create_api_key(Role::Client, Some("bench"))?.key;

    let server = Server::start(cli, url, dir)?;
    // An early return stops the server too (`Server` stops it when dropped).
    let http_assign = server.wrk(dir, &assign_script(assign_book, &key), span)?;
    let http_redeem = server.wrk(dir, &redeem_script(&key), span)?;
    drop(server);

    println!("{backend}: the library, {CONNECTIONS} threads");
    let lib_assign = hammer(span, |thread, n| {
        coupons
            .assign_random(assign_book, &format!("lib-{thread}-{n}"), None)
            .map(drop)
    })?;
    let lib_redeem = hammer(span, |_, _| {
        let i = rand::rng().random_range(1..=REDEEM_CODES);
        coupons
            .redeem(&redeem_code(i), &redeem_user(i), &RedeemRequest::default())
            .map(drop)
    })?;
    for (what, http, lib) in [
        ("assign", &http_assign, &lib_assign),
        ("redeem", &http_redeem, &lib_redeem),
    ] {
        if http.failed > 0 {
            return Err(format!(
                "{backend} {what}: {} of {} HTTP answers were not 200",
                http.failed, http.requests
            )
            .into());
        }
        writeln!(
            table,
            "| {backend} | {what} | {:.0} | {} | {} | {:.0} | {} | {} | {:.2}× |",
            http.rate,
            ms(http.p50),
            ms(http.p99),
            lib.rate,
            ms(lib.p50),
            ms(lib.p99),
            http.rate / lib.rate
        )?;
    }
    Ok(())
}

/// Throughput and latency of one measurement; latencies in microseconds.
struct Figures {
    requests: u64,
    failed: u64,
    rate: f64,
    p50: f64,
    p99: f64,
}

fn ms(micros: f64) -> String {
    format!("{:.2} ms", micros / 1000.0)
}

/// A running `coupon serve`, stopped (SIGTERM, then a kill if it lingers) when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(cli: &Path, url: &str, dir: &Path) -> Res<Server> {
        let log = dir.join("serve.log");
        let child = Command::new(cli)
            .args(["serve", "--bind", "127.0.0.1:0", "--rate-limit", "0"])
            .arg("--database-url")
            .arg(url)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log)?)
            .spawn()?;
        let mut server = Server {
            child,
            addr: String::new(),
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if let Some(addr) = listening_address(&fs::read_to_string(&log)?) {
                server.addr = addr;
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                return Err(format!(
                    "coupon serve exited ({status}): {}",
                    fs::read_to_string(&log)?
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err("coupon serve did not say where it listens within 30 s".into())
    }

    /// Runs `wrk` with `script` against the server for `span`.
    fn wrk(&self, dir: &Path, script: &str, span: Duration) -> Res<Figures> {
        let path: PathBuf = dir.join("bench.lua");
        fs::write(&path, script)?;
        let out = Command::new("wrk")
            .args(["-t", "2", "-c", &CONNECTIONS.to_string()])
            .args(["-d", &format!("{}s", span.as_secs())])
            .arg("-s")
            .arg(&path)
            .arg(format!("http://{}", self.addr))
            .output()?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(
                format!("wrk failed: {text}{}", String::from_utf8_lossy(&out.stderr)).into(),
            );
        }
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("RESULT "))
            .ok_or_else(|| format!("wrk printed no result: {text}"))?;
        let v: Vec<f64> = line
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let [requests, duration, p50, p99, failed] = v[..] else {
            return Err(format!("wrk result {line:?} is malformed").into());
        };
        Ok(Figures {
            requests: requests as u64,
            failed: failed as u64,
            rate: requests / (duration / 1e6),
            p50,
            p99,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first `127.0.0.1:PORT` in the server's log.
fn listening_address(log: &str) -> Option<String> {
    let at = log.find("127.0.0.1:")?;
    let rest = &log[at + "127.0.0.1:".len()..];
    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!port.is_empty()).then(|| format!("127.0.0.1:{port}"))
}

/// Shared by both scripts: headers, thread numbering, and the line the program reads.
fn lua_common(key: &str) -> String {
    format!(
        r#"wrk.headers["Authorization"] = "Bearer {key}"
wrk.headers["Content-Type"] = "application/json"
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
function init(args)
  n = 0
  math.randomseed(os.time() * 100 + tid)
end
function done(summary, latency, requests)
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %d %d %f %f %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), failed))
end
"#
    )
}

fn assign_script(book: BookId, key: &str) -> String {
    let run = std::process::id();
    format!(
        r#"{}
function request()
  n = n + 1
  local body = string.format('{{"book_id":{book},"user_id":"http-{run}-%d-%d"}}', tid, n)
  return wrk.format("POST", "/coupons/assign", nil, body)
end
"#,
        lua_common(key)
    )
}

fn redeem_script(key: &str) -> String {
    format!(
        r#"{}
function request()
  local i = math.random(1, {REDEEM_CODES})
  local path = string.format("/coupons/redeem/C-%08d", i)
  local body = string.format('{{"user_id":"u-%08d"}}', i)
  return wrk.format("POST", path, nil, body)
end
"#,
        lua_common(key)
    )
}

fn redeem_code(i: u32) -> String {
    format!("C-{i:08}")
}

fn redeem_user(i: u32) -> String {
    format!("u-{i:08}")
}

/// Runs `op(thread, n)` on [`CONNECTIONS`] threads for `span`, timing each call.
fn hammer(
    span: Duration,
    op: impl Fn(usize, u64) -> coupon_core::Result<()> + Sync,
) -> Res<Figures> {
    let barrier = Barrier::new(CONNECTIONS);
    let results: Vec<Res<Vec<f64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CONNECTIONS)
            .map(|thread| {
                let (op, barrier) = (&op, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    let mut times = vec![];
                    let mut n = 0;
                    while start.elapsed() < span {
                        let began = Instant::now();
                        op(thread, n)?;
                        times.push(began.elapsed().as_secs_f64() * 1e6);
                        n += 1;
                    }
                    Ok(times)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a worker panicked".into())))
            .collect()
    });
    let mut times = vec![];
    for result in results {
        times.extend(result?);
    }
    times.sort_by(f64::total_cmp);
    Ok(Figures {
        requests: times.len() as u64,
        failed: 0,
        rate: times.len() as f64 / span.as_secs_f64(),
        p50: percentile(&times, 50.0),
        p99: percentile(&times, 99.0),
    })
}

fn check_wrk() -> Res<()> {
    match Command::new("wrk").arg("--version").output() {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "cannot run wrk ({e}); this benchmark loads the server with wrk: install it \
             (Debian: apt-get install wrk) and put it on the PATH"
        )
        .into()),
    }
}
