//! Runs the real `coupon` binary on a temporary database.
#![allow(clippy::unwrap_used)] // test helpers: a failed step should panic with its location

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

/// A database for one test, and a temporary directory for its files.
struct Env {
    dir: TempDir,
    url: String,
    /// On Postgres: the server and the test's own schema, dropped with the `Env`.
    postgres: Option<(String, String)>,
}

impl Env {
    /// A fresh SQLite file.
    fn new() -> Env {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        Env {
            dir,
            url,
            postgres: None,
        }
    }

    /// A fresh schema on the Postgres server of `COUPON_TEST_POSTGRES_URL`, chosen with the
    /// URL's `schema` parameter; `None`, with a notice, when no server is configured.
    fn postgres(tag: &str) -> Option<Env> {
        let Some(server) = std::env::var("COUPON_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            eprintln!("skipped {tag} on Postgres: COUPON_TEST_POSTGRES_URL is not set");
            return None;
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let schema = format!("coupon_cli_{}_{n}_{nanos}", std::process::id());
        let sep = if server.contains('?') { '&' } else { '?' };
        Some(Env {
            dir: tempfile::tempdir().unwrap(),
            url: format!("{server}{sep}schema={schema}"),
            postgres: Some((server, schema)),
        })
    }

    fn is_sqlite(&self) -> bool {
        self.postgres.is_none()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The `coupon` command on this database with `args`, its standard streams piped.
    fn command<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_coupon"));
        command
            .arg("--database-url")
            .arg(&self.url)
            .args(args)
            .env_remove("COUPON_DATABASE_URL")
            .current_dir(self.dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    fn run_with(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut child = self.command(args).spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.unwrap_or_default()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None)
    }

    /// Runs with `--json`, expects success and returns the one JSON document.
    fn json(&self, args: &[&str]) -> Value {
        let out = self.run(&[&["--json"], args].concat());
        assert_eq!(
            status(&out),
            0,
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs with `--json`, expects failure with `status` and returns the error's kind and message.
    fn fails(&self, args: &[&str], expected: i32) -> (String, String) {
        let out = self.run(&[&["--json"], args].concat());
        assert_eq!(
            status(&out),
            expected,
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let err: Value = serde_json::from_slice(&out.stderr).unwrap();
        (
            err["error"]["kind"].as_str().unwrap().to_owned(),
            err["error"]["message"].as_str().unwrap().to_owned(),
        )
    }

    fn write(&self, name: &str, content: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        use coupon_store_postgres::postgres::{Client, NoTls};
        let Some((server, schema)) = &self.postgres else {
            return;
        };
        let dropped = Client::connect(server, NoTls).and_then(|mut c| {
            c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        });
        if let Err(e) = dropped {
            eprintln!("could not drop test schema {schema}: {e}");
        }
    }
}

fn status(out: &Output) -> i32 {
    out.status.code().unwrap()
}

#[test]
fn usage_error_is_2() {
    let env = Env::new();
    let out = env.run(&["book", "create"]);
    assert_eq!(status(&out), 2);
    assert_eq!(status(&env.run(&["frobnicate"])), 2);
    assert_eq!(
        status(&env.run(&["codes", "generate", "1", "--count", "many"])),
        2
    );
}

#[test]
fn not_found_is_3() {
    let env = Env::new();
    let (kind, _) = env.fails(&["book", "show", "42"], 3);
    assert_eq!(kind, "not_found");
    let (kind, _) = env.fails(&["show", "NOPE"], 3);
    assert_eq!(kind, "not_found");
}

#[test]
fn refusal_is_4() {
    let env = Env::new();
    env.json(&["book", "create", "--name", "Empty"]);
    let (kind, _) = env.fails(&["assign", "1", "--user", "ada"], 4);
    assert_eq!(kind, "sold_out");
}

#[test]
fn invalid_input_is_5_before_the_database_is_touched() {
    let env = Env::new();
    for args in [
        &["codes", "generate", "1", "--count", "0"][..],
        &["lock", "A", "--user", "u", "--ttl", "25h"],
        &["lock", "A", "--user", "u", "--ttl", "soon"],
        &["events", "--limit", "0"],
        &[
            "book",
            "create",
            "--name",
            "x",
            "--valid-until",
            "yesterday",
        ],
        &["redeem", "A", "--user", "u", "--context", "{not json"],
        &["codes", "import", "1", "missing.csv"],
    ] {
        let (kind, _) = env.fails(args, 5);
        assert_eq!(kind, "invalid_input", "{args:?}");
    }
    assert!(!env.path("c.db").exists(), "the database was opened");
    // Without --json the error is a line of text.
    let out = env.run(&["events", "--limit", "0"]);
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .starts_with("error: "));
}

#[test]
fn backend_failure_is_1() {
    let env = Env::new();
    std::fs::create_dir(env.path("dir.db")).unwrap();
    let mut env = env;
    env.url = env.path("dir.db").display().to_string();
    let (kind, _) = env.fails(&["book", "list"], 1);
    assert_eq!(kind, "backend");
    env.url = "postgres://ada:hunter2@127.0.0.1:1/coupons".into();
    let (kind, message) = env.fails(&["book", "list"], 1);
    assert_eq!(kind, "backend");
    assert!(message.contains("127.0.0.1:1/coupons"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn bad_csv_rows_refuse_the_import() {
    let env = Env::new();
    env.json(&["book", "create", "--name", "B"]);
    let csv = env.write("bad.csv", "code\nGOOD-1\n\nbad code\nGOOD-2\nno!\n");
    let (kind, message) = env.fails(&["codes", "import", "1", &csv], 5);
    assert_eq!(kind, "invalid_input");
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("line 6"), "{message}");
    assert_eq!(env.json(&["book", "show", "1"])["stats"]["codes"], 0);

    let report = env.json(&["codes", "import", "1", &csv, "--skip-invalid"]);
    assert_eq!(report["inserted"], 2);
    assert_eq!(report["invalid_total"], 2);
    assert_eq!(report["invalid"][0]["line"], 4);

    let columns = env.write("cols.csv", "A,1\nB,2\n");
    let (kind, _) = env.fails(&["codes", "import", "1", &columns, "--skip-invalid"], 5);
    assert_eq!(kind, "invalid_input");
}

#[test]
fn reimport_reports_every_row_as_duplicate() {
    let env = Env::new();
    env.json(&["book", "create", "--name", "B"]);
    let csv = "note,code\nx,A-1\ny,A-2\nz,A-3\n";
    let out = env.run_with(
        &["--json", "codes", "import", "1", "-"],
        Some(csv.as_bytes()),
    );
    assert_eq!(status(&out), 0);
    let first: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(first["inserted"], 3);
    let out = env.run_with(
        &["--json", "codes", "import", "1", "-"],
        Some(csv.as_bytes()),
    );
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["inserted"], 0);
    assert_eq!(again["duplicates"], 3);
}

#[test]
fn closed_pipe_ends_quietly() {
    let env = Env::new();
    env.json(&["book", "create", "--name", "B", "--pattern", "[A-Z]{10}"]);
    env.json(&["codes", "generate", "1", "--count", "20000"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_coupon"))
        .args(["--database-url", &env.url, "codes", "export", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty());
}

#[test]
fn default_database_is_coupons_db_and_env_values_stay_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_coupon"))
        .args(["--json", "book", "create", "--name", "Here"])
        .env_remove("COUPON_DATABASE_URL")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("coupons.db").exists());

    let secret = "postgres://admin:hunter2@db/coupons";
    let help = Command::new(env!("CARGO_BIN_EXE_coupon"))
        .arg("--help")
        .env("COUPON_DATABASE_URL", secret)
        .output()
        .unwrap();
    assert_eq!(status(&help), 0);
    let text = String::from_utf8(help.stdout).unwrap();
    assert!(!text.contains("hunter2"));
    assert!(text.contains("Exit status"));

    let listed = Command::new(env!("CARGO_BIN_EXE_coupon"))
        .args(["book", "list"])
        .env("COUPON_DATABASE_URL", secret)
        .output()
        .unwrap();
    assert_eq!(status(&listed), 1);
    assert!(!String::from_utf8_lossy(&listed.stderr).contains("hunter2"));
}

#[test]
fn rule_refusals_on_codes() {
    let env = Env::new();
    env.json(&["book", "create", "--name", "B"]);
    let csv = env.write("c.csv", "A-1\nA-2\n");
    env.json(&["codes", "import", "1", &csv]);
    env.json(&["assign", "--code", "a-1", "--user", "ada"]);
    let (kind, _) = env.fails(&["assign", "--code", "A-1", "--user", "bob"], 4);
    assert_eq!(kind, "not_owner");
    let lock = env.json(&["lock", "A-1", "--user", "ada", "--ttl", "90s"]);
    assert!(lock["token"].as_str().unwrap().len() >= 32);
    let (kind, _) = env.fails(&["unlock", "A-1", "--token", "wrong"], 4);
    assert_eq!(kind, "bad_lock_token");
    env.json(&["codes", "void", "A-2"]);
    let (kind, _) = env.fails(&["redeem", "A-2", "--user", "ada"], 4);
    assert_eq!(kind, "void");
}

#[path = "it/hostile.rs"]
mod hostile;
#[path = "it/soak.rs"]
mod soak;

/// Cases run on each backend: the walkthrough, and many `coupon` processes at once on one
/// database (the limits hold across processes, not only across threads of one).
mod cases {
    use std::collections::BTreeSet;

    use super::*;

    /// API keys: created with their secret shown once, listed without it, revoked by id.
    pub(super) fn apikeys_create_list_revoke(env: &Env) {
        let admin = env.json(&["apikey", "create", "--role", "admin", "--name", "ops"]);
        let secret = admin["key"].as_str().unwrap().to_owned();
        assert!(secret.starts_with("cpn_"), "{admin}");
        assert_eq!(
            (admin["role"].as_str(), admin["name"].as_str()),
            (Some("admin"), Some("ops"))
        );
        let client = env.json(&["apikey", "create", "--role", "client"]);
        assert_eq!(client["name"], Value::Null);
        let id = client["id"].to_string();
        let revoked = env.json(&["apikey", "revoke", &id]);
        assert!(revoked["revoked_at"].is_string(), "{revoked}");
        let listed = env.json(&["apikey", "list"]);
        assert_eq!(listed.as_array().unwrap().len(), 2);
        assert!(listed[0]["revoked_at"].is_null());
        assert_eq!(listed[1]["revoked_at"], revoked["revoked_at"]);
        let text = String::from_utf8(env.run(&["apikey", "list"]).stdout).unwrap();
        assert!(
            !text.contains(&secret) && !listed.to_string().contains(&secret),
            "a listing never shows a secret"
        );
        assert!(text.contains("ops") && text.contains("client"), "{text}");
        let (kind, message) = env.fails(&["apikey", "create", "--role", "root"], 5);
        assert_eq!(kind, "invalid_input", "{message}");
        let (kind, _) = env.fails(&["apikey", "create", "--role", "admin", "--name", " "], 5);
        assert_eq!(kind, "invalid_input");
        let (kind, _) = env.fails(&["apikey", "revoke", "999"], 3);
        assert_eq!(kind, "not_found");
        assert_eq!(env.json(&["apikey", "list"]).as_array().unwrap().len(), 2);
    }

    /// `coupon serve`: logs the address it bound, serves with API keys, logs one line per
    /// request without the key, and on SIGTERM finishes the request in flight and exits 0.
    pub(super) fn serve_until_sigterm(env: &Env) {
        use std::io::{BufRead, BufReader, Read};
        use std::net::TcpStream;

        let admin = env.json(&["apikey", "create", "--role", "admin", "--name", "ops"]);
        let key = admin["key"].as_str().unwrap().to_owned();
        let mut server = env
            .command(&["serve", "--bind", "127.0.0.1:0"])
            .env("RUST_LOG", "info")
            .spawn()
            .unwrap();
        let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
        let stderr = BufReader::new(server.stderr.take().unwrap());
        std::thread::spawn(move || {
            for line in stderr.lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = vec![];
        let address = loop {
            let line = lines
                .recv_timeout(std::time::Duration::from_secs(60))
                .expect("a log line with the address");
            let record: Value = serde_json::from_str(&line).unwrap();
            log.push(line);
            if record["message"] == "listening" {
                break record["address"].as_str().unwrap().to_owned();
            }
        };

        let mut health = TcpStream::connect(&address).unwrap();
        health
            .write_all(b"GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        health.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

        // A request in flight: its handler asked for the body (100 Continue) when SIGTERM comes.
        let body = r#"{"name": "Late"}"#;
        let mut stream = TcpStream::connect(&address).unwrap();
        write!(
            stream,
            "POST /coupons HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\
             Expect: 100-continue\r\n\r\n",
            body.len()
        )
        .unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with("HTTP/1.1 100"), "{line}");
        reader.read_line(&mut line).unwrap();
        let killed = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        stream.write_all(body.as_bytes()).unwrap();
        let mut answer = String::new();
        reader.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
        assert!(answer.contains(r#""name":"Late""#), "{answer}");

        let status = server.wait().unwrap();
        assert_eq!(status.code(), Some(0));
        log.extend(lines.iter());
        let requests: Vec<Value> = log
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["message"] == "request")
            .collect();
        let created = requests
            .iter()
            .find(|r| r["route"] == "/coupons")
            .expect("a log line for POST /coupons");
        assert_eq!(
            (&created["method"], &created["status"], &created["key"]),
            (&Value::from("POST"), &Value::from(201), &Value::from("ops"))
        );
        assert!(created["latency_ms"].is_number() && created["timestamp"].is_string());
        assert!(
            !log.iter().any(|l| l.contains(&key)),
            "the key never reaches the log"
        );
        assert_eq!(env.json(&["book", "list"])[0]["name"], "Late");
    }

    /// The whole job, as the README walks through it.
    pub(super) fn walkthrough(env: &Env) {
        let book = env.json(&[
            "book",
            "create",
            "--name",
            "Summer",
            "--pattern",
            "SUMMER-[A-Z0-9]{8}",
            "--max-codes-per-user",
            "1",
            "--lock-ttl",
            "2m",
        ]);
        assert_eq!(book["id"], 1);
        assert_eq!(book["name"], "Summer");
        assert_eq!(book["lock_ttl_seconds"], 120);

        let generated = env.json(&["codes", "generate", "1", "--count", "5"]);
        assert_eq!(generated["generated"], 5);
        assert!(generated["space"].is_string());
        assert!(generated["guess_probability"].is_number());

        let csv = env.write("codes.csv", "Code\r\nvip-1\r\n\r\nVIP-2\r\nvip-1\r\n");
        let report = env.json(&["codes", "import", "1", &csv]);
        assert_eq!(report["inserted"], 2);
        assert_eq!(report["duplicates"], 1);
        assert_eq!(report["invalid_total"], 0);
        assert_eq!(report["invalid"], Value::Array(vec![]));

        let coupon = env.json(&["assign", "1", "--user", "ada", "--idempotency-key", "k1"]);
        let code = coupon["code"].as_str().unwrap().to_owned();
        assert_eq!(coupon["user_id"], "ada");
        assert_eq!(coupon["state"], "active");
        let again = env.json(&["assign", "1", "--user", "ada", "--idempotency-key", "k1"]);
        assert_eq!(again["code"], code.as_str());

        let lock = env.json(&["lock", &code, "--user", "ada"]);
        let token = lock["token"].as_str().unwrap().to_owned();
        assert_eq!(lock["code"], code.as_str());
        assert!(lock["expires_at"].is_string());
        assert_eq!(env.json(&["show", &code])["state"], "locked");
        let (kind, _) = env.fails(&["redeem", &code, "--user", "ada"], 4);
        assert_eq!(kind, "locked");

        let receipt = env.json(&[
            "redeem",
            &code.to_lowercase(),
            "--user",
            "ada",
            "--token",
            &token,
            "--order-id",
            "order-1",
            "--context",
            r#"{"cart": 42}"#,
        ]);
        assert_eq!(receipt["code"], code.as_str());
        assert_eq!(receipt["order_id"], "order-1");
        assert_eq!(receipt["redemptions"], 1);
        assert_eq!(receipt["remaining"], 0);
        assert_eq!(receipt["replayed"], false);
        let replay = env.json(&["redeem", &code, "--user", "ada", "--order-id", "order-1"]);
        assert_eq!(replay["replayed"], true);
        assert_eq!(replay["redeemed_at"], receipt["redeemed_at"]);

        let mine = env.json(&["user", "coupons", "ada"]);
        assert_eq!(mine.as_array().unwrap().len(), 1);
        assert_eq!(mine[0]["state"], "redeemed");
        assert_eq!(mine[0]["book_name"], "Summer");
        assert_eq!(
            env.json(&["user", "coupons", "nobody"]),
            Value::Array(vec![])
        );

        let details = env.json(&["book", "show", "1"]);
        assert_eq!(details["stats"]["codes"], 7);
        assert_eq!(details["stats"]["redeemed"], 1);

        let events = env.json(&["events"]);
        let kinds: Vec<&str> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        assert_eq!(
            kinds,
            [
                "book_created",
                "codes_added",
                "codes_added",
                "assigned",
                "locked",
                "redeemed"
            ]
        );
        let seqs: Vec<i64> = events
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
        let later = env.json(&["events", "--after", "4", "--limit", "1"]);
        assert_eq!(later.as_array().unwrap().len(), 1);
        assert_eq!(later[0]["seq"], 5);

        let export = env.run(&["codes", "export", "1"]);
        assert_eq!(status(&export), 0);
        let text = String::from_utf8(export.stdout).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("code,state,assigned_to,redemptions"));
        assert_eq!(lines.count(), 7);
        assert!(text.contains(&format!("{code},redeemed,ada,1")));

        let file = env.path("out.csv").display().to_string();
        let written = env.json(&[
            "codes",
            "export",
            "1",
            "--state",
            "available",
            "--output",
            &file,
        ]);
        assert_eq!(written["rows"], 6);
        assert_eq!(written["output"], file.as_str());
        assert_eq!(std::fs::read_to_string(&file).unwrap().lines().count(), 7);

        let unlocked = env.json(&["unlock", &code, "--token", &token]);
        assert_eq!(unlocked["unlocked"], true);

        let voided = env.json(&["codes", "void", "vip-2"]);
        assert_eq!(voided[0]["state"], "void");

        // Text output is readable.
        let list = env.run(&["book", "list"]);
        let text = String::from_utf8(list.stdout).unwrap();
        assert!(text.starts_with("ID  NAME"), "{text}");
    }

    /// Starts every command at once, then waits for all of them.
    fn race(env: &Env, runs: &[Vec<String>]) -> Vec<Output> {
        let children: Vec<_> = runs
            .iter()
            .map(|args| {
                let mut command = env.command(&[&["--json".to_owned()], &args[..]].concat());
                command.stdin(Stdio::null());
                command.spawn().unwrap()
            })
            .collect();
        children
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect()
    }

    /// The error kinds of the failed runs, by kind; panics on an unexpected exit status.
    fn winners_and_refusals(outputs: &[Output], refusal: &str) -> Vec<Value> {
        let mut winners = Vec::new();
        for out in outputs {
            let stderr = String::from_utf8_lossy(&out.stderr);
            match status(out) {
                0 => winners.push(serde_json::from_slice(&out.stdout).unwrap()),
                4 => {
                    let err: Value = serde_json::from_slice(&out.stderr).unwrap();
                    assert_eq!(err["error"]["kind"], refusal, "{stderr}");
                }
                other => panic!("exit status {other}: {stderr}"),
            }
        }
        winners
    }

    fn args(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|part| (*part).to_owned()).collect()
    }

    fn book_with_codes(env: &Env, extra: &[&str], codes: usize) {
        env.json(&[&["book", "create", "--name", "Race"], extra].concat());
        let csv: String = (0..codes).map(|i| format!("RACE-{i}\n")).collect();
        let path = env.write("codes.csv", &csv);
        assert_eq!(
            env.json(&["codes", "import", "1", &path])["inserted"],
            codes
        );
    }

    pub(super) fn twenty_processes_assigning_one_code_leave_one_owner(env: &Env) {
        book_with_codes(env, &[], 1);
        let runs: Vec<_> = (0..20)
            .map(|i| args(&["assign", "--code", "RACE-0", "--user", &format!("user-{i}")]))
            .collect();
        let winners = winners_and_refusals(&race(env, &runs), "not_owner");
        assert_eq!(winners.len(), 1);
        let owner = &winners[0]["user_id"];
        assert_eq!(&env.json(&["show", "RACE-0"])["user_id"], owner);
        let assigned = env
            .json(&["events"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "assigned")
            .count();
        assert_eq!(assigned, 1);
    }

    pub(super) fn twenty_four_processes_share_eight_codes_between_eight_users(env: &Env) {
        book_with_codes(env, &[], 8);
        let runs: Vec<_> = (0..24)
            .map(|i| args(&["assign", "1", "--user", &format!("user-{i}")]))
            .collect();
        let winners = winners_and_refusals(&race(env, &runs), "sold_out");
        assert_eq!(winners.len(), 8);
        let codes: BTreeSet<_> = winners.iter().map(|w| w["code"].to_string()).collect();
        let users: BTreeSet<_> = winners.iter().map(|w| w["user_id"].to_string()).collect();
        assert_eq!((codes.len(), users.len()), (8, 8));
        let stats = &env.json(&["book", "show", "1"])["stats"];
        assert_eq!(
            (&stats["assigned"], &stats["available"]),
            (&8.into(), &0.into())
        );
    }

    pub(super) fn twelve_processes_for_one_user_stop_at_the_cap(env: &Env) {
        book_with_codes(env, &["--max-codes-per-user", "2"], 20);
        let runs: Vec<_> = (0..12)
            .map(|_| args(&["assign", "1", "--user", "ada"]))
            .collect();
        let winners = winners_and_refusals(&race(env, &runs), "limit_reached");
        assert_eq!(winners.len(), 2);
        assert_eq!(
            env.json(&["user", "coupons", "ada"])
                .as_array()
                .unwrap()
                .len(),
            2
        );
    }

    pub(super) fn sixteen_processes_redeeming_a_single_use_code_redeem_it_once(env: &Env) {
        book_with_codes(env, &["--max-redemptions-per-user", "1"], 1);
        env.json(&["assign", "--code", "RACE-0", "--user", "ada"]);
        let runs: Vec<_> = (0..16)
            .map(|i| {
                let order = format!("order-{i}");
                args(&["redeem", "RACE-0", "--user", "ada", "--order-id", &order])
            })
            .collect();
        let winners = winners_and_refusals(&race(env, &runs), "exhausted");
        assert_eq!(winners.len(), 1);
        assert_eq!(env.json(&["show", "RACE-0"])["redemptions"], 1);
    }
    /// `kill -9` in the middle of an import leaves the book exactly as before it started.
    pub(super) fn killed_import_leaves_the_book_as_it_was(env: &Env) {
        env.json(&["book", "create", "--name", "B"]);
        let before_csv = env.write("before.csv", "KEEP-1\nKEEP-2\n");
        env.json(&["codes", "import", "1", &before_csv]);
        env.json(&["assign", "--code", "KEEP-1", "--user", "ada"]);
        let snapshot = |env: &Env| {
            let export = env.run(&["codes", "export", "1"]);
            assert_eq!(status(&export), 0);
            (
                env.json(&["book", "show", "1"]),
                env.json(&["events"]),
                export.stdout,
            )
        };
        let before = snapshot(env);

        // Feed the import through a pipe and stop feeding, pipe open, after 350,000 rows: once
        // they are in the pipe the import has read all but the last few and stored several
        // batches inside its transaction, and it is waiting for more when it is killed.
        let mut child = env.command(&["codes", "import", "1", "-"]).spawn().unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut rows = String::from("code\n");
        for i in 0..350_000 {
            rows.push_str(&format!("NEW-{i:08}\n"));
        }
        stdin.write_all(rows.as_bytes()).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert!(child.try_wait().unwrap().is_none(), "the import ended");
        child.kill().unwrap();
        assert!(!child.wait().unwrap().success());
        drop(stdin);

        assert_eq!(snapshot(env), before);
        if env.is_sqlite() {
            let check = coupon_store_sqlite::rusqlite::Connection::open(env.path("c.db")).unwrap();
            let integrity: String = check
                .query_row("PRAGMA integrity_check", [], |row| row.get(0))
                .unwrap();
            assert_eq!(integrity, "ok");
        }
        // The database is usable: an import run to the end adds its rows.
        let again = env.write("again.csv", "NEW-1\nNEW-2\n");
        assert_eq!(env.json(&["codes", "import", "1", &again])["inserted"], 2);
    }
}

/// The multi-process cases, on a fresh database of each backend.
macro_rules! on_each_backend {
    ($($module:ident::$case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $case() {
                    super::$module::$case(&super::Env::new());
                }
            )*
        }
        mod on_postgres {
            $(
                #[test]
                fn $case() {
                    if let Some(env) = super::Env::postgres(stringify!($case)) {
                        super::$module::$case(&env);
                    }
                }
            )*
        }
    };
}

on_each_backend!(
    cases::apikeys_create_list_revoke,
    cases::serve_until_sigterm,
    cases::walkthrough,
    cases::twenty_processes_assigning_one_code_leave_one_owner,
    cases::twenty_four_processes_share_eight_codes_between_eight_users,
    cases::twelve_processes_for_one_user_stop_at_the_cap,
    cases::sixteen_processes_redeeming_a_single_use_code_redeem_it_once,
    cases::killed_import_leaves_the_book_as_it_was,
    soak::soak,
    soak::killed_redeems_leave_commits_whole,
    soak::killed_generate_leaves_the_book_as_it_was,
);
