//! The HTTP server on an ephemeral port, on SQLite (a temporary file) and on Postgres (a schema
//! of its own on `COUPON_TEST_POSTGRES_URL`, dropped afterwards; skipped with a notice without
//! it).
//!
//! Every answer the tests receive is checked against the server's own OpenAPI document: its
//! status must be documented for the operation, and its body must validate against the
//! documented schema.
#![allow(clippy::unwrap_used)] // test helpers: a failed step should panic with its location

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use coupon_core::apikey::Role;
use coupon_core::store::{Access, CouponStore, StoreTx};
use coupon_core::{Coupons, MemoryStore};
use coupon_server::{ServeError, ServerConfig};
use coupon_store_postgres::{PostgresOptions, PostgresStore};
use coupon_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{json, Value};
use tempfile::TempDir;

/// Any of the stores a test serves.
enum Store {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
    /// A memory store whose transactions take half a second while the flag is set.
    Slow(Box<MemoryStore>, Arc<AtomicBool>),
}

impl CouponStore for Store {
    fn transaction<T>(
        &self,
        access: Access,
        f: impl FnOnce(&mut dyn StoreTx) -> coupon_core::Result<T>,
    ) -> coupon_core::Result<T> {
        match self {
            Store::Sqlite(s) => s.transaction(access, f),
            Store::Postgres(s) => s.transaction(access, f),
            Store::Slow(s, slow) => {
                if slow.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(500));
                }
                s.transaction(access, f)
            }
        }
    }
}

/// A database for one test.
enum Db {
    Sqlite(TempDir),
    Postgres { server: String, schema: String },
}

impl Db {
    fn sqlite() -> Db {
        Db::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres(tag: &str) -> Option<Db> {
        let Some(server) = std::env::var("COUPON_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            eprintln!("skipped {tag} on Postgres: COUPON_TEST_POSTGRES_URL is not set");
            return None;
        };
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let schema = format!(
            "coupon_server_{}_{}_{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Some(Db::Postgres { server, schema })
    }

    fn path(&self) -> PathBuf {
        match self {
            Db::Sqlite(dir) => dir.path().join("c.db"),
            Db::Postgres { .. } => unreachable!("not an SQLite database"),
        }
    }

    /// The service on this database, with a pool of `pool` connections.
    fn open(&self, pool: u32) -> Coupons<Store> {
        Coupons::new(match self {
            Db::Sqlite(_) => Store::Sqlite(
                SqliteStore::open_with(
                    self.path(),
                    SqliteOptions {
                        pool_size: pool,
                        ..SqliteOptions::default()
                    },
                )
                .unwrap(),
            ),
            Db::Postgres { server, schema } => {
                let sep = if server.contains('?') { '&' } else { '?' };
                Store::Postgres(
                    PostgresStore::open_with(
                        &format!("{server}{sep}schema={schema}"),
                        PostgresOptions {
                            pool_size: pool,
                            ..PostgresOptions::default()
                        },
                    )
                    .unwrap(),
                )
            }
        })
    }

    /// Runs SQL on the database behind the server's back (to break it).
    fn execute(&self, sql: &str) {
        match self {
            Db::Sqlite(_) => {
                let conn = coupon_store_sqlite::rusqlite::Connection::open(self.path()).unwrap();
                conn.execute_batch(sql).unwrap();
            }
            Db::Postgres { server, schema } => {
                use coupon_store_postgres::postgres::{Client, NoTls};
                let mut client = Client::connect(server, NoTls).unwrap();
                client
                    .batch_execute(&format!("SET search_path TO \"{schema}\"; {sql}"))
                    .unwrap();
            }
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        use coupon_store_postgres::postgres::{Client, NoTls};
        let Db::Postgres { server, schema } = self else {
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

/// An answer: status, headers (lower-case names) and body (JSON, or `Null` when empty).
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: BTreeMap<String, String>,
    body: Value,
}

impl Reply {
    fn kind(&self) -> &str {
        self.body["kind"].as_str().unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    #[track_caller]
    fn expect(&self, status: u16, kind: &str) -> &Self {
        assert_eq!((self.status, self.kind()), (status, kind), "{self:?}");
        self
    }
}

/// A running server with an admin and a client key.
struct Server {
    base: String,
    address: SocketAddr,
    admin: String,
    client: String,
    spec: Value,
    agent: ureq::Agent,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ServeError>>>,
}

impl Server {
    fn start(db: &Db) -> Server {
        Server::start_with(db.open(16), ServerConfig::default())
    }

    fn start_with(coupons: Coupons<Store>, config: ServerConfig) -> Server {
        let admin = coupons
            .create_api_key(Role::Admin, Some("ops"))
            .unwrap()
            .key;
        let client = coupons.create_api_key(Role::Client, None).unwrap().key;
        let config = ServerConfig {
            bind: "127.0.0.1:0".parse().unwrap(),
            key_refresh: Duration::from_millis(200),
            ..config
        };
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            coupon_server::serve_with_shutdown(
                coupons,
                config,
                move |address| bound_tx.send(address).unwrap(),
                async move {
                    let _ = stopped.await;
                },
            )
        });
        let address = bound_rx.recv().unwrap();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut server = Server {
            base: format!("http://{address}"),
            address,
            admin,
            client,
            spec: Value::Null,
            agent,
            stop: Some(stop),
            thread: Some(thread),
        };
        let spec = server.get("/openapi.json", &[], "", None);
        assert_eq!(spec.status, 200);
        server.spec = spec.body;
        server
    }

    /// `method template` with `args` in place of its `{…}` (percent-encoded), a query string, a
    /// key and a JSON body; the answer is checked against the OpenAPI document.
    fn call(
        &self,
        method: &str,
        template: &str,
        args: &[&str],
        query: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        self.send(method, template, args, query, key, body, &[])
    }

    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        method: &str,
        template: &str,
        args: &[&str],
        query: &str,
        key: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let url = format!("{}{}{query}", self.base, fill(template, args));
        let mut request = ureq::http::Request::builder().method(method).uri(&url);
        if let Some(key) = key {
            request = request.header("Authorization", format!("Bearer {key}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = match body {
            Some(body) => {
                let request = request
                    .header("Content-Type", "application/json")
                    .body(body.to_string())
                    .unwrap();
                self.agent.run(request)
            }
            None => self.agent.run(request.body(()).unwrap()),
        };
        let mut response = response.unwrap();
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let text = response.body_mut().read_to_string().unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{status} {text}: {e}"))
        };
        let reply = Reply {
            status,
            headers,
            body,
        };
        self.conforms(method, template, &reply);
        reply
    }

    /// Asserts that the answer is documented: its status for the operation, its body's schema,
    /// and the headers its kind promises.
    fn conforms(&self, method: &str, template: &str, reply: &Reply) {
        assert!(
            reply.status != 500 || reply.kind() == "backend",
            "{reply:?}"
        );
        if reply.status >= 400 {
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{reply:?}"
            );
            let message = reply.body["message"].as_str().unwrap_or("");
            assert!(!message.is_empty(), "{reply:?}");
        }
        match reply.kind() {
            "unauthorized" => assert_eq!(reply.header("www-authenticate"), Some("Bearer")),
            "rate_limited" | "conflict" => {
                let wait: u64 = reply.header("retry-after").unwrap().parse().unwrap();
                assert!(wait >= 1, "{reply:?}");
            }
            "method_not_allowed" => assert!(reply.header("allow").is_some(), "{reply:?}"),
            _ => {}
        }
        if self.spec.is_null() {
            return;
        }
        if let Err(e) = documented(&self.spec, method, template, reply) {
            panic!("{e}");
        }
    }

    fn get(&self, template: &str, args: &[&str], query: &str, key: Option<&str>) -> Reply {
        self.call("GET", template, args, query, key, None)
    }

    fn admin(&self, template: &str, args: &[&str], body: Value) -> Reply {
        self.call("POST", template, args, "", Some(&self.admin), Some(&body))
    }

    fn client(&self, template: &str, args: &[&str], body: Value) -> Reply {
        self.call("POST", template, args, "", Some(&self.client), Some(&body))
    }

    /// Creates a book with `fields` (and a name) and returns its id.
    fn book(&self, fields: Value) -> i64 {
        let mut body = json!({ "name": "Book" });
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let reply = self.admin("/coupons", &[], body);
        assert_eq!(reply.status, 201, "{reply:?}");
        reply.body["id"].as_i64().unwrap()
    }

    /// Adds `codes` to `book`.
    fn codes(&self, book: i64, codes: &[&str]) {
        let reply = self.admin(
            "/coupons/codes",
            &[],
            json!({ "book_id": book, "codes": codes }),
        );
        assert_eq!(reply.status, 200, "{reply:?}");
    }

    /// Sends raw bytes on a new connection and returns the status and the body.
    fn raw(&self, request: &str) -> (u16, Value) {
        let mut stream = TcpStream::connect(self.address).unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        let status = text[9..12].parse().unwrap();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let result = thread.join();
            if !std::thread::panicking() {
                result.unwrap().unwrap();
            }
        }
    }
}

/// Whether `reply` is a documented answer of `method template` in `spec`: its status is listed
/// and its body validates against the listed schema. Other paths and methods are not checked.
fn documented(spec: &Value, method: &str, template: &str, reply: &Reply) -> Result<(), String> {
    let Some(operation) = spec["paths"][template].get(method.to_ascii_lowercase()) else {
        return Ok(());
    };
    let mut response = operation["responses"]
        .get(reply.status.to_string())
        .ok_or_else(|| {
            format!("{method} {template} answered {reply:?}, which it does not document")
        })?
        .clone();
    if let Some(reference) = response["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/responses/");
        response = spec["components"]["responses"][name].clone();
    }
    let Some(schema) = response["content"]["application/json"]["schema"].as_object() else {
        return match reply.body {
            Value::Null => Ok(()),
            _ => Err(format!(
                "{method} {template}: undocumented body in {reply:?}"
            )),
        };
    };
    let mut root = schema.clone();
    root.insert("components".into(), spec["components"].clone());
    let validator = jsonschema::validator_for(&Value::Object(root)).unwrap();
    validator
        .validate(&reply.body)
        .map_err(|e| format!("{method} {template} answered {reply:?}, against its schema: {e}"))
}

/// The check of answers against the document catches what it should.
#[test]
fn the_document_check_refuses_wrong_answers() {
    let spec = serde_json::to_value(coupon_server::openapi::document()).unwrap();
    let reply = |status: u16, body: Value| Reply {
        status,
        headers: BTreeMap::new(),
        body,
    };
    let coupon = json!({
        "code": "A", "book_id": 1, "book_name": "B", "user_id": null, "state": "available",
        "redemptions": 0, "remaining": 1, "assigned_at": null, "valid_until": null,
        "locked_until": null,
    });
    let check =
        |status, body| documented(&spec, "POST", "/coupons/void/{code}", &reply(status, body));
    assert!(check(200, coupon.clone()).is_ok());
    let mut missing = coupon.clone();
    missing.as_object_mut().unwrap().remove("locked_until");
    assert!(
        check(200, missing).is_err(),
        "a field always present is required"
    );
    let mut wrong = coupon;
    wrong["state"] = json!("lost");
    assert!(check(200, wrong).is_err());
    assert!(check(409, json!({ "kind": "conflict", "message": "busy" })).is_ok());
    assert!(check(409, json!({ "kind": "teapot", "message": "" })).is_err());
    assert!(check(418, json!({ "kind": "conflict", "message": "busy" })).is_err());
    let problem = json!({ "kind": "forbidden", "message": "no" });
    let client_route = reply(403, problem);
    assert!(documented(&spec, "POST", "/coupons/assign", &client_route).is_err());
}

/// `template` with each `{…}` replaced by the next of `args`, percent-encoded.
fn fill(template: &str, args: &[&str]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out.push_str(&rest[..start]);
        out.push_str(&encode(args.next().unwrap()));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Waits up to 5 s (the SPEC's bound) for `done`, checking every 50 ms.
fn within_five_seconds(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    done()
}

/// Cases run on each backend.
mod cases {
    use super::*;

    /// Every endpoint's success, in the order a shop would use them.
    pub(super) fn every_endpoint(db: &Db) {
        let s = Server::start(db);
        let health = s.get("/health", &[], "", None);
        assert_eq!(
            (health.status, &health.body),
            (200, &json!({ "status": "ok" }))
        );
        let spec = s.get("/openapi.json", &[], "", None);
        assert!(spec.body["openapi"].as_str().unwrap().starts_with("3.1"));

        let created = s.admin(
            "/coupons",
            &[],
            json!({
                "name": " Summer ",
                "code_pattern": "SUMMER-[A-Z0-9]{8}",
                "max_codes_per_user": 2,
                "lock_ttl_seconds": 120,
                "valid_from": "2000-01-01T00:00:00Z",
            }),
        );
        assert_eq!(created.status, 201, "{created:?}");
        assert_eq!(created.body["name"], "Summer");
        assert_eq!(created.body["lock_ttl_seconds"], 120);
        assert_eq!(created.body["max_redemptions_per_user"], 1);
        let book = created.body["id"].as_i64().unwrap();
        let id = book.to_string();

        let patched = s.call(
            "PATCH",
            "/coupons/{book_id}",
            &[&id],
            "",
            Some(&s.admin),
            Some(&json!({ "description": "sun", "max_codes_per_user": null })),
        );
        assert_eq!(patched.status, 200, "{patched:?}");
        assert_eq!(patched.body["description"], "sun");
        assert_eq!(patched.body["max_codes_per_user"], Value::Null);

        let imported = s.admin(
            "/coupons/codes",
            &[],
            json!({ "book_id": book, "codes": ["a-1", "A-2", "A-1"] }),
        );
        assert_eq!(
            (imported.status, &imported.body),
            (
                200,
                &json!({ "inserted": 2, "duplicates": 1, "invalid": [], "invalid_total": 0 })
            )
        );
        let skipped = s.admin(
            "/coupons/codes",
            &[],
            json!({ "book_id": book, "codes": ["A-3", "two words"], "skip_invalid": true }),
        );
        assert_eq!(skipped.status, 200, "{skipped:?}");
        assert_eq!(skipped.body["inserted"], 1);
        assert_eq!(skipped.body["invalid"][0]["index"], 1);
        assert_eq!(skipped.body["invalid"][0]["code"], "two words");
        let refused = s.admin(
            "/coupons/codes",
            &[],
            json!({ "book_id": book, "codes": ["A-4", "A-5", "bad!"] }),
        );
        refused.expect(400, "invalid_input");
        assert!(
            refused.body["message"]
                .as_str()
                .unwrap()
                .contains("index 2:"),
            "{refused:?}"
        );

        let generated = s.admin(
            "/coupons/generate",
            &[],
            json!({ "book_id": book, "count": 5 }),
        );
        assert_eq!(generated.status, 200, "{generated:?}");
        assert_eq!(generated.body["generated"], 5);
        assert_eq!(generated.body["space"], "2821109907456");

        let shown = s.get("/coupons/{book_id}", &[&id], "", Some(&s.client));
        assert_eq!(shown.status, 200, "{shown:?}");
        assert_eq!(shown.body["stats"]["codes"], 8);
        assert_eq!(shown.body["stats"]["available"], 8);

        let ada = "ada/lovelace";
        let assigned = s.client(
            "/coupons/assign/{code}",
            &["a-1"],
            json!({ "user_id": ada }),
        );
        assert_eq!(assigned.status, 200, "{assigned:?}");
        assert_eq!(
            (&assigned.body["code"], &assigned.body["user_id"]),
            (&json!("A-1"), &json!(ada))
        );

        let lock = s.client(
            "/coupons/lock/{code}",
            &["A-1"],
            json!({ "user_id": ada, "ttl_seconds": 60 }),
        );
        assert_eq!(lock.status, 200, "{lock:?}");
        let token = lock.body["token"].as_str().unwrap().to_owned();
        let extended = s.client(
            "/coupons/lock/{code}",
            &["A-1"],
            json!({ "user_id": ada, "token": token }),
        );
        assert_eq!(extended.body["token"], json!(token));

        let receipt = s.client(
            "/coupons/redeem/{code}",
            &["A-1"],
            json!({ "user_id": ada, "lock_token": token, "order_id": "o-1", "context": {"cart": 3} }),
        );
        assert_eq!(receipt.status, 200, "{receipt:?}");
        assert_eq!(
            (&receipt.body["remaining"], &receipt.body["replayed"]),
            (&json!(0), &json!(false))
        );
        let replay = s.send(
            "POST",
            "/coupons/redeem/{code}",
            &["A-1"],
            "",
            Some(&s.client),
            Some(&json!({ "user_id": ada })),
            &[("Idempotency-Key", "o-1")],
        );
        assert_eq!(replay.status, 200, "{replay:?}");
        assert_eq!(replay.body["replayed"], true);
        assert_eq!(replay.body["order_id"], "o-1");
        s.send(
            "POST",
            "/coupons/redeem/{code}",
            &["A-1"],
            "",
            Some(&s.client),
            Some(&json!({ "user_id": ada, "order_id": "o-2" })),
            &[("Idempotency-Key", "o-1")],
        )
        .expect(400, "invalid_input");

        let lock = s.client("/coupons/lock/{code}", &["A-2"], json!({ "user_id": ada }));
        assert_eq!(lock.status, 200, "{lock:?}");
        let unlocked = s.client(
            "/coupons/unlock/{code}",
            &["A-2"],
            json!({ "token": lock.body["token"] }),
        );
        assert_eq!((unlocked.status, &unlocked.body), (204, &Value::Null));

        let void = s.call(
            "POST",
            "/coupons/void/{code}",
            &["a-2"],
            "",
            Some(&s.admin),
            None,
        );
        assert_eq!(void.status, 200, "{void:?}");
        assert_eq!(void.body["state"], "void");

        // A-1 and A-2 are taken: the draw is among the others.
        let body = json!({ "book_id": book, "user_id": "user 1", "idempotency_key": "k-1" });
        let first = s.client("/coupons/assign", &[], body.clone());
        assert_eq!(first.status, 200, "{first:?}");
        assert_eq!(first.body["state"], "active");
        let again = s.client("/coupons/assign", &[], body);
        assert_eq!(again.body["code"], first.body["code"]);

        let mine = s.get("/users/{user_id}/coupons", &[ada], "", Some(&s.client));
        assert_eq!(mine.status, 200, "{mine:?}");
        let states: Vec<_> = mine
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["state"])
            .collect();
        assert_eq!(states, [&json!("redeemed"), &json!("void")]);
        let void_only = s.get(
            "/users/{user_id}/coupons",
            &[ada],
            "?state=void",
            Some(&s.client),
        );
        assert_eq!(void_only.body.as_array().unwrap().len(), 1);
        let by_book = s.get(
            "/users/{user_id}/coupons",
            &[ada],
            &format!("?book_id={book}&state=redeemed"),
            Some(&s.client),
        );
        assert_eq!(by_book.body[0]["code"], "A-1");
        let nobody = s.get("/users/{user_id}/coupons", &["nobody"], "", Some(&s.client));
        assert_eq!((nobody.status, &nobody.body), (200, &json!([])));

        let events = s.get("/events", &[], "?after=0&limit=1000", Some(&s.admin));
        assert_eq!(events.status, 200, "{events:?}");
        let kinds: BTreeSet<_> = events
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect();
        for kind in [
            "book_created",
            "book_updated",
            "codes_added",
            "assigned",
            "locked",
            "unlocked",
            "redeemed",
            "voided",
        ] {
            assert!(kinds.contains(kind), "{kind} missing in {kinds:?}");
        }
        let page = s.get("/events", &[], "?after=1&limit=2", Some(&s.admin));
        let seqs: Vec<i64> = page
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert!(
            seqs.len() == 2 && 1 < seqs[0] && seqs[0] < seqs[1],
            "{seqs:?}"
        );
        let default_page = s.get("/events", &[], "", Some(&s.admin));
        assert_eq!(default_page.status, 200);
    }

    /// Every kind a request can meet, each with its one status, and every malformed request.
    pub(super) fn every_status(db: &Db) {
        let s = Server::start(db);
        let book = s.book(json!({ "max_codes_per_user": 1 }));
        s.codes(book, &["S-1", "S-2", "S-3", "S-4", "S-5", "S-6"]);
        let id = book.to_string();

        // 400 invalid_input: bodies.
        let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
        for body in [
            json!({ "book_id": book, "user_id": " padded" }),
            json!({ "book_id": book, "user_id": "" }),
            json!({ "book_id": "one", "user_id": "u" }),
            json!({ "book_id": book, "user_id": "u", "colour": "red" }),
            json!({ "book_id": book }),
            json!([book, "u"]),
            json!({ "book_id": book, "user_id": "u", "idempotency_key": "k".repeat(300) }),
        ] {
            s.client("/coupons/assign", &[], body)
                .expect(400, "invalid_input");
        }
        let raw_post = |path: &str, content_type: Option<&str>, body: &str| {
            let content_type = content_type
                .map(|t| format!("Content-Type: {t}\r\n"))
                .unwrap_or_default();
            s.raw(&format!(
                "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n{content_type}\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                s.client,
                body.len()
            ))
        };
        let good = format!(r#"{{"book_id": {book}, "user_id": "u"}}"#);
        for (content_type, body) in [
            (Some("application/json"), "{"),
            (Some("application/json"), "{\"book_id\": 1,}"),
            (Some("application/json"), ""),
            (Some("application/json"), deep.as_str()),
            (Some("text/plain"), good.as_str()),
            (None, good.as_str()),
        ] {
            let (status, body) = raw_post("/coupons/assign", content_type, body);
            assert_eq!(
                (status, &body["kind"]),
                (400, &json!("invalid_input")),
                "{body}"
            );
        }
        let nested = format!(
            r#"{{"user_id": "u", "context": {}{}}}"#,
            "{\"a\":".repeat(1000),
            "1".to_owned() + &"}".repeat(1000)
        );
        let (status, body) = raw_post("/coupons/redeem/S-1", Some("application/json"), &nested);
        assert_eq!(
            (status, &body["kind"]),
            (400, &json!("invalid_input")),
            "{body}"
        );
        // 400 invalid_input: out-of-range values, paths and queries.
        for (template, args, body) in [
            (
                "/coupons/lock/{code}",
                &["S-1"][..],
                json!({ "user_id": "u", "ttl_seconds": 0 }),
            ),
            (
                "/coupons/lock/{code}",
                &["S-1"],
                json!({ "user_id": "u", "ttl_seconds": 86401 }),
            ),
            (
                "/coupons/lock/{code}",
                &["two words"],
                json!({ "user_id": "u" }),
            ),
            (
                "/coupons/assign/{code}",
                &["S-1"],
                json!({ "user_id": "tab\there" }),
            ),
            (
                "/coupons/redeem/{code}",
                &["S-1"],
                json!({ "user_id": "ü" }),
            ),
        ] {
            s.client(template, args, body).expect(400, "invalid_input");
        }
        for body in [
            json!({ "name": "x", "lock_ttl_seconds": 0 }),
            json!({ "name": "x", "max_codes_per_user": 0 }),
            json!({ "name": "x", "max_redemptions_per_user": -1 }),
            json!({ "name": "  " }),
            json!({ "name": "x", "valid_from": "tomorrow" }),
            json!({ "name": "x", "valid_from": "2030-01-02T00:00:00Z", "valid_until": "2030-01-01T00:00:00Z" }),
        ] {
            s.admin("/coupons", &[], body).expect(400, "invalid_input");
        }
        s.admin(
            "/coupons/generate",
            &[],
            json!({ "book_id": book, "count": 0 }),
        )
        .expect(400, "invalid_input");
        s.admin(
            "/coupons/generate",
            &[],
            json!({ "book_id": book, "count": 1 }),
        )
        .expect(400, "invalid_input"); // the book has no pattern
        s.get("/coupons/{book_id}", &["abc"], "", Some(&s.client))
            .expect(400, "invalid_input");
        for query in ["?state=gone", "?colour=red", "?book_id=x"] {
            s.get("/users/{user_id}/coupons", &["u"], query, Some(&s.client))
                .expect(400, "invalid_input");
        }
        for query in ["?limit=0", "?limit=10001", "?after=-1", "?limit=many"] {
            s.get("/events", &[], query, Some(&s.admin))
                .expect(400, "invalid_input");
        }
        s.get("/users/{user_id}/coupons", &[" u"], "", Some(&s.client))
            .expect(400, "invalid_input");

        // 400 invalid_pattern, 422 infeasible.
        s.admin(
            "/coupons",
            &[],
            json!({ "name": "x", "code_pattern": "A*" }),
        )
        .expect(400, "invalid_pattern");
        let small = s.book(json!({ "code_pattern": "[0-9]{2}" }));
        s.admin(
            "/coupons/generate",
            &[],
            json!({ "book_id": small, "count": 1 }),
        )
        .expect(422, "infeasible");
        s.admin(
            "/coupons/generate",
            &[],
            json!({ "book_id": small, "count": 101, "allow_guessable": true }),
        )
        .expect(422, "infeasible");

        // 404 not_found, unknown routes included; 405 method_not_allowed.
        s.get("/coupons/{book_id}", &["999"], "", Some(&s.client))
            .expect(404, "not_found");
        s.call(
            "PATCH",
            "/coupons/{book_id}",
            &["999"],
            "",
            Some(&s.admin),
            Some(&json!({})),
        )
        .expect(404, "not_found");
        s.client(
            "/coupons/assign",
            &[],
            json!({ "book_id": 999, "user_id": "u" }),
        )
        .expect(404, "not_found");
        s.client(
            "/coupons/assign/{code}",
            &["NOPE"],
            json!({ "user_id": "u" }),
        )
        .expect(404, "not_found");
        s.admin(
            "/coupons/codes",
            &[],
            json!({ "book_id": 999, "codes": ["A"] }),
        )
        .expect(404, "not_found");
        s.call(
            "POST",
            "/coupons/void/{code}",
            &["NOPE"],
            "",
            Some(&s.admin),
            None,
        )
        .expect(404, "not_found");
        s.get(
            "/users/{user_id}/coupons",
            &["u"],
            "?book_id=999",
            Some(&s.client),
        )
        .expect(404, "not_found");
        s.get("/nowhere", &[], "", Some(&s.admin))
            .expect(404, "not_found");
        s.get("/coupons/1/extra", &[], "", None)
            .expect(404, "not_found");
        let wrong = s.call(
            "DELETE",
            "/coupons/{book_id}",
            &[&id],
            "",
            Some(&s.admin),
            None,
        );
        wrong.expect(405, "method_not_allowed");
        let allowed = wrong.header("allow").unwrap();
        assert!(
            allowed.contains("GET") && allowed.contains("PATCH"),
            "{allowed}"
        );
        s.get("/coupons/assign", &[], "", Some(&s.client))
            .expect(405, "method_not_allowed");

        // 409: every rule refusal.
        s.client(
            "/coupons/assign/{code}",
            &["S-1"],
            json!({ "user_id": "ann" }),
        );
        s.client(
            "/coupons/assign/{code}",
            &["S-1"],
            json!({ "user_id": "bob" }),
        )
        .expect(409, "not_owner");
        s.client(
            "/coupons/assign/{code}",
            &["S-2"],
            json!({ "user_id": "ann" }),
        )
        .expect(409, "limit_reached");
        let lock = s.client(
            "/coupons/lock/{code}",
            &["S-1"],
            json!({ "user_id": "ann" }),
        );
        s.client(
            "/coupons/redeem/{code}",
            &["S-1"],
            json!({ "user_id": "ann" }),
        )
        .expect(409, "locked");
        s.client(
            "/coupons/lock/{code}",
            &["S-1"],
            json!({ "user_id": "ann" }),
        )
        .expect(409, "locked");
        s.client(
            "/coupons/unlock/{code}",
            &["S-1"],
            json!({ "token": "wrong" }),
        )
        .expect(409, "bad_lock_token");
        let token = lock.body["token"].as_str().unwrap();
        s.client(
            "/coupons/redeem/{code}",
            &["S-1"],
            json!({ "user_id": "ann", "lock_token": token }),
        );
        s.client(
            "/coupons/redeem/{code}",
            &["S-1"],
            json!({ "user_id": "ann" }),
        )
        .expect(409, "exhausted");
        s.call(
            "POST",
            "/coupons/void/{code}",
            &["S-3"],
            "",
            Some(&s.admin),
            None,
        );
        s.client(
            "/coupons/redeem/{code}",
            &["S-3"],
            json!({ "user_id": "cy" }),
        )
        .expect(409, "void");
        let empty = s.book(json!({}));
        s.client(
            "/coupons/assign",
            &[],
            json!({ "book_id": empty, "user_id": "u" }),
        )
        .expect(409, "sold_out");
        let later = s.book(json!({ "valid_from": "2999-01-01T00:00:00Z" }));
        s.codes(later, &["L-1"]);
        s.client(
            "/coupons/redeem/{code}",
            &["L-1"],
            json!({ "user_id": "u" }),
        )
        .expect(409, "not_yet_valid");
        let past = s.book(json!({ "valid_until": "2001-01-01T00:00:00Z" }));
        s.codes(past, &["P-1"]);
        s.client(
            "/coupons/assign",
            &[],
            json!({ "book_id": past, "user_id": "u" }),
        )
        .expect(409, "expired");

        // 413 payload_too_large: over 1 MiB, except for imports (up to 64 MiB).
        let big = json!({ "book_id": book, "user_id": "x".repeat(1024 * 1024) });
        s.client("/coupons/assign", &[], big)
            .expect(413, "payload_too_large");
        let many: Vec<String> = (0..150_000).map(|i| format!("BULK-{i:06}")).collect();
        let bulk = s.admin(
            "/coupons/codes",
            &[],
            json!({ "book_id": empty, "codes": many }),
        );
        assert_eq!(
            (bulk.status, &bulk.body["inserted"]),
            (200, &json!(150_000))
        );

        // 500 backend, without internals, while the database still answers: /health is 200.
        db.execute(match db {
            Db::Sqlite(_) => "DROP TABLE events",
            Db::Postgres { .. } => "DROP TABLE events CASCADE",
        });
        let failed = s.get("/events", &[], "", Some(&s.admin));
        failed.expect(500, "backend");
        let message = failed.body["message"].as_str().unwrap();
        assert!(
            !message.contains("events") && !message.contains("relation"),
            "{message}"
        );
        s.get("/health", &[], "", None).expect(200, "");
        // 503 unavailable once the database does not answer even the health check's read.
        db.execute(match db {
            Db::Sqlite(_) => "PRAGMA foreign_keys = OFF; DROP TABLE books",
            Db::Postgres { .. } => "DROP TABLE books CASCADE",
        });
        let down = s.get("/events", &[], "", Some(&s.admin));
        down.expect(503, "unavailable");
        assert!(
            !down.body["message"].as_str().unwrap().contains("books"),
            "{}",
            down.body
        );
        s.get("/health", &[], "", None).expect(503, "unavailable");
    }

    /// Keys: missing, unknown, malformed and revoked keys are 401; a client key on an admin
    /// route is 403; open endpoints need none; keys created or revoked while the server runs
    /// take effect within 5 s.
    pub(super) fn api_keys(db: &Db) {
        let s = Server::start(db);
        let book = s.book(json!({}));
        let id = book.to_string();
        let show = |key: Option<&str>| s.get("/coupons/{book_id}", &[&id], "", key).status;
        assert_eq!(show(Some(&s.client)), 200);
        assert_eq!(
            show(Some(&s.admin)),
            200,
            "admin keys may do what clients do"
        );
        s.get("/coupons/{book_id}", &[&id], "", None)
            .expect(401, "unauthorized");
        s.get("/coupons/{book_id}", &[&id], "", Some("cpn_unknown"))
            .expect(401, "unauthorized");
        let basic = s.send(
            "GET",
            "/coupons/{book_id}",
            &[&id],
            "",
            None,
            None,
            &[("Authorization", "Basic YWRtaW46YWRtaW4=")],
        );
        basic.expect(401, "unauthorized");
        s.call(
            "POST",
            "/coupons",
            &[],
            "",
            Some(&s.client),
            Some(&json!({ "name": "x" })),
        )
        .expect(403, "forbidden");
        s.get("/events", &[], "", Some(&s.client))
            .expect(403, "forbidden");
        s.call(
            "POST",
            "/coupons/void/{code}",
            &["A"],
            "",
            Some(&s.client),
            None,
        )
        .expect(403, "forbidden");
        assert_eq!(s.get("/health", &[], "", None).status, 200);
        assert_eq!(s.get("/openapi.json", &[], "", None).status, 200);

        // Another process creates and revokes keys on the same database.
        let other = db.open(2);
        let created = other.create_api_key(Role::Client, Some("late")).unwrap();
        assert!(within_five_seconds(|| show(Some(&created.key)) == 200));
        other.revoke_api_key(created.id).unwrap();
        assert!(within_five_seconds(|| show(Some(&created.key)) == 401));

        // Keys that cannot be reloaded: the last ones loaded stay in force.
        db.execute("ALTER TABLE api_keys RENAME TO api_keys_elsewhere");
        std::thread::sleep(Duration::from_millis(600)); // three failed reloads
        assert_eq!(show(Some(&s.client)), 200);
        assert_eq!(show(Some(&created.key)), 401);
    }

    /// Over the per-key rate limit: 429 with Retry-After, for that key only.
    pub(super) fn rate_limit(db: &Db) {
        let s = Server::start_with(
            db.open(4),
            ServerConfig {
                rate_limit: 3,
                ..ServerConfig::default()
            },
        );
        let limited = (0..20)
            .map(|_| s.get("/coupons/{book_id}", &["1"], "", Some(&s.client)))
            .find(|reply| reply.status == 429)
            .expect("a refusal within 20 requests at 3 per second");
        limited.expect(429, "rate_limited");
        assert_eq!(
            s.get("/coupons/{book_id}", &["1"], "", Some(&s.admin))
                .status,
            404,
            "another key has its own limit"
        );
        assert_eq!(
            s.get("/health", &[], "", None).status,
            200,
            "open endpoints are not limited"
        );
    }

    /// Runs `n` requests at once (after a barrier) and returns the answers.
    fn at_once(n: usize, request: impl Fn(usize) -> Reply + Sync) -> Vec<Reply> {
        let barrier = Barrier::new(n);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n)
                .map(|i| {
                    let (barrier, request) = (&barrier, &request);
                    scope.spawn(move || {
                        barrier.wait();
                        request(i)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    }

    fn tally(replies: &[Reply]) -> BTreeMap<(u16, String), usize> {
        let mut tally = BTreeMap::new();
        for reply in replies {
            *tally
                .entry((reply.status, reply.kind().to_owned()))
                .or_default() += 1;
        }
        tally
    }

    /// 50 users assigning one code at once: one owner, 49 `not_owner`.
    pub(super) fn fifty_users_assigning_one_code(db: &Db) {
        let s = Server::start(db);
        let book = s.book(json!({}));
        s.codes(book, &["ONE"]);
        let replies = at_once(50, |i| {
            s.client(
                "/coupons/assign/{code}",
                &["ONE"],
                json!({ "user_id": format!("u{i}") }),
            )
        });
        let tally = tally(&replies);
        assert_eq!(
            tally,
            BTreeMap::from([((200, String::new()), 1), ((409, "not_owner".into()), 49)])
        );
    }

    /// 50 redeems of a single-use code at once: one receipt, 49 `exhausted`.
    pub(super) fn fifty_redeems_of_a_single_use_code(db: &Db) {
        let s = Server::start(db);
        let book = s.book(json!({}));
        s.codes(book, &["ONCE"]);
        s.client(
            "/coupons/assign/{code}",
            &["ONCE"],
            json!({ "user_id": "ann" }),
        );
        let replies = at_once(50, |i| {
            s.client(
                "/coupons/redeem/{code}",
                &["ONCE"],
                json!({ "user_id": "ann", "order_id": format!("o-{i}") }),
            )
        });
        assert_eq!(
            tally(&replies),
            BTreeMap::from([((200, String::new()), 1), ((409, "exhausted".into()), 49)])
        );
    }

    /// 30 users drawing from 10 codes at once: 10 distinct winners, 20 `sold_out`.
    pub(super) fn thirty_users_drawing_ten_codes(db: &Db) {
        let s = Server::start(db);
        let book = s.book(json!({}));
        let codes: Vec<String> = (0..10).map(|i| format!("K-{i}")).collect();
        s.codes(book, &codes.iter().map(String::as_str).collect::<Vec<_>>());
        let replies = at_once(30, |i| {
            s.client(
                "/coupons/assign",
                &[],
                json!({ "book_id": book, "user_id": format!("u{i}") }),
            )
        });
        assert_eq!(
            tally(&replies),
            BTreeMap::from([((200, String::new()), 10), ((409, "sold_out".into()), 20)])
        );
        let won: BTreeSet<_> = replies
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| r.body["code"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(won, codes.into_iter().collect());
    }
}

macro_rules! on_each_backend {
    ($($case:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $case() {
                    super::cases::$case(&super::Db::sqlite());
                }
            )*
        }
        mod on_postgres {
            $(
                #[test]
                fn $case() {
                    if let Some(db) = super::Db::postgres(stringify!($case)) {
                        super::cases::$case(&db);
                    }
                }
            )*
        }
    };
}

on_each_backend!(
    every_endpoint,
    every_status,
    api_keys,
    rate_limit,
    fifty_users_assigning_one_code,
    fifty_redeems_of_a_single_use_code,
    thirty_users_drawing_ten_codes,
);

/// A store that answers too slowly: `503 timeout`, documented like every other answer.
#[test]
fn slow_requests_time_out() {
    let slow = Arc::new(AtomicBool::new(false));
    let s = Server::start_with(
        Coupons::new(Store::Slow(Box::default(), slow.clone())),
        ServerConfig {
            request_timeout: Duration::from_millis(200),
            ..ServerConfig::default()
        },
    );
    let book = s.book(json!({}));
    slow.store(true, Ordering::Relaxed);
    s.get(
        "/coupons/{book_id}",
        &[&book.to_string()],
        "",
        Some(&s.client),
    )
    .expect(503, "timeout");
}

/// A client that trickles its headers is cut off when the header time runs out, and the server
/// goes on answering others.
#[test]
fn headers_sent_too_slowly_close_the_connection() {
    let db = Db::sqlite();
    let s = Server::start_with(
        db.open(4),
        ServerConfig {
            header_timeout: Duration::from_millis(300),
            ..ServerConfig::default()
        },
    );
    let mut stream = TcpStream::connect(s.address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = std::time::Instant::now();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: test\r\n")
        .unwrap();
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("the server closes the connection");
    assert!(started.elapsed() < Duration::from_secs(5));
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert_eq!(s.get("/health", &[], "", None).status, 200);
}

/// SQLite held by another writer past the retries: `409 conflict` with Retry-After.
#[test]
fn contention_past_the_retries_is_conflict() {
    let db = Db::sqlite();
    let store = SqliteStore::open_with(
        db.path(),
        SqliteOptions {
            pool_size: 2,
            busy_timeout: Duration::from_millis(20),
        },
    )
    .unwrap();
    let s = Server::start_with(Coupons::new(Store::Sqlite(store)), ServerConfig::default());
    let book = s.book(json!({}));
    let blocker = coupon_store_sqlite::rusqlite::Connection::open(db.path()).unwrap();
    blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    s.client(
        "/coupons/assign",
        &[],
        json!({ "book_id": book, "user_id": "u" }),
    )
    .expect(409, "conflict");
    blocker.execute_batch("ROLLBACK").unwrap();
    s.client(
        "/coupons/assign",
        &[],
        json!({ "book_id": book, "user_id": "u" }),
    )
    .expect(409, "sold_out");
}

/// The document describes every operation with its security, and every error schema.
#[test]
fn openapi_document_is_complete() {
    let doc = serde_json::to_value(coupon_server::openapi::document()).unwrap();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let open = path == "/health" || path == "/openapi.json";
            assert_eq!(op["security"].is_null(), open, "{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            if !open {
                for status in ["401", "429", "500", "503"] {
                    assert!(responses.contains_key(status), "{method} {path} {status}");
                }
            }
        }
    }
    assert_eq!(operations, 15);
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let kinds = doc["components"]["schemas"]["ProblemKind"]["enum"]
        .as_array()
        .unwrap();
    assert_eq!(kinds.len(), coupon_server::ProblemKind::ALL.len());
}

/// Shutdown lets a request in flight finish: the handler is already reading the body (it asked
/// for it with `100 Continue`) when the shutdown starts.
#[test]
fn a_request_in_flight_finishes_before_shutdown() {
    let db = Db::sqlite();
    let mut s = Server::start(&db);
    let book = s.book(json!({}));
    let body = json!({ "book_id": book, "codes": ["LATE-1"] }).to_string();
    let mut stream = TcpStream::connect(s.address).unwrap();
    write!(
        stream,
        "POST /coupons/codes HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        s.admin,
        body.len()
    )
    .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert!(line.starts_with("HTTP/1.1 100"), "{line}");
    reader.read_line(&mut line).unwrap();
    // The handler is reading the body: shut down now, then send it.
    let _ = s.stop.take().unwrap().send(());
    stream.write_all(body.as_bytes()).unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
    assert!(rest.contains("\"inserted\":1"), "{rest}");
    s.thread.take().unwrap().join().unwrap().unwrap();
    assert!(
        TcpStream::connect(s.address).is_err(),
        "no longer listening"
    );
}
