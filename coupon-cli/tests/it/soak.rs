//! Soak race: threads using the library and `coupon` processes, all at once on a small book,
//! run a random mix of assign, lock, unlock, redeem and replayed redeem for a bounded time, one
//! fresh small book every half second; then the invariants are checked from the database
//! itself, with SQL, not through the library.
//!
//! The run lasts 4 seconds, or `COUPON_SOAK_SECONDS`.
//!
//! The same checker then judges `kill -9` during a burst of redeems (every answered redeem is
//! stored, nothing stored is half a redeem) and during a generate (the book is as before).

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use coupon_core::store::CouponStore;
use coupon_core::{Coupons, ErrorKind, RedeemRequest};

use super::*;

const CODES: usize = 12;
const USERS: usize = 6;
const MAX_CODES_PER_USER: i64 = 2;
const MAX_REDEMPTIONS_PER_USER: i64 = 3;
const THREADS: usize = 8;
const PROCESSES: usize = 4;

/// How long one small book is played with: its redemptions are used up well within it, so the
/// race moves on to the next fresh book (one for each round).
const ROUND: Duration = Duration::from_millis(500);

/// The number of rounds, hence of books.
fn rounds() -> i64 {
    soak_time().as_millis().div_ceil(ROUND.as_millis()) as i64
}

/// The book of the current round.
fn round(started: Instant) -> i64 {
    (1 + (started.elapsed().as_millis() / ROUND.as_millis()) as i64).min(rounds())
}

fn soak_time() -> Duration {
    let seconds = std::env::var("COUPON_SOAK_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&s| s > 0)
        .unwrap_or(4);
    Duration::from_secs(seconds)
}

/// The soak's random choices: a seeded generator, so that a printed seed replays a run's mix.
struct Rng(StdRng);

impl Rng {
    fn seeded(seed: u64) -> Rng {
        Rng(StdRng::seed_from_u64(seed))
    }

    fn below(&mut self, n: usize) -> usize {
        self.0.random_range(0..n)
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn code(&mut self, book: i64) -> String {
        format!("SOAK-{book}-{}", self.below(CODES))
    }

    fn user(&mut self) -> String {
        format!("user-{}", self.below(USERS))
    }
}

/// One operation, chosen before it is run by a thread or a process.
#[derive(Debug, Clone)]
enum Step {
    AssignRandom {
        book: i64,
        user: String,
        key: Option<String>,
    },
    AssignCode {
        code: String,
        user: String,
    },
    Lock {
        code: String,
        user: String,
        ttl: u64,
        token: Option<String>,
    },
    Unlock {
        code: String,
        token: String,
    },
    Redeem {
        code: String,
        user: String,
        token: Option<String>,
        order: Option<String>,
        context: Option<Value>,
        replay: bool,
    },
}

impl Step {
    fn name(&self) -> &'static str {
        match self {
            Step::AssignRandom { key: None, .. } => "assign_random",
            Step::AssignRandom { key: Some(_), .. } => "assign_random_key",
            Step::AssignCode { .. } => "assign_code",
            Step::Lock { token: None, .. } => "lock",
            Step::Lock { token: Some(_), .. } => "lock_extend",
            Step::Unlock { .. } => "unlock",
            Step::Redeem { replay: true, .. } => "redeem_replay",
            Step::Redeem {
                token: Some(_),
                order: Some(_),
                ..
            } => "redeem_token_order",
            Step::Redeem { token: Some(_), .. } => "redeem_token",
            Step::Redeem { order: Some(_), .. } => "redeem_order",
            Step::Redeem { .. } => "redeem_plain",
        }
    }

    /// The arguments of `coupon --json …` for this step.
    fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = vec!["--json".into()];
        let mut push = |parts: &[&str]| args.extend(parts.iter().map(|p| (*p).to_owned()));
        match self {
            Step::AssignRandom { book, user, key } => {
                push(&["assign", &book.to_string(), "--user", user]);
                if let Some(key) = key {
                    push(&["--idempotency-key", key]);
                }
            }
            Step::AssignCode { code, user } => push(&["assign", "--code", code, "--user", user]),
            Step::Lock {
                code,
                user,
                ttl,
                token,
            } => {
                push(&["lock", code, "--user", user, "--ttl", &format!("{ttl}s")]);
                if let Some(token) = token {
                    push(&["--token", token]);
                }
            }
            Step::Unlock { code, token } => push(&["unlock", code, "--token", token]),
            Step::Redeem {
                code,
                user,
                token,
                order,
                context,
                ..
            } => {
                push(&["redeem", code, "--user", user]);
                if let Some(token) = token {
                    push(&["--token", token]);
                }
                if let Some(order) = order {
                    push(&["--order-id", order]);
                }
                if let Some(context) = context {
                    push(&["--context", &context.to_string()]);
                }
            }
        }
        args
    }
}

/// What a successful step tells the others.
#[derive(Debug, Default)]
struct Done {
    /// The code and the user who now holds it.
    owner: Option<(String, String)>,
    /// A lock's code and token.
    token: Option<(String, String)>,
    /// A redeem's answer was a replay.
    replayed: bool,
}

/// What the workers learn from each other, to aim at codes that can be locked and redeemed.
#[derive(Default)]
struct Shared {
    owners: Mutex<HashMap<String, String>>,
    tokens: Mutex<Vec<(String, String)>>,
    /// Redeems that counted, with an order id: (code, user, order id), to replay.
    orders: Mutex<Vec<(String, String, String)>>,
    next_order: AtomicU64,
    stop: AtomicBool,
    /// (step, outcome, by library or process) → count.
    tally: Mutex<BTreeMap<(&'static str, String, &'static str), u64>>,
    /// Panics, crashes, backend errors and wrong answers.
    failures: Mutex<Vec<String>>,
}

impl Shared {
    fn plan(&self, rng: &mut Rng, worker: &str, book: i64) -> Step {
        let owned = |code: &str| self.owners.lock().unwrap().get(code).cloned();
        let order = |rng: &mut Rng| {
            rng.chance(70).then(|| {
                let n = self.next_order.fetch_add(1, Ordering::Relaxed);
                format!("{worker}-order-{n}")
            })
        };
        let roll = rng.below(100);
        if roll < 10 {
            let user = rng.user();
            let key = rng.chance(40).then(|| format!("key-{}", rng.below(3)));
            return Step::AssignRandom { book, user, key };
        }
        if roll < 18 {
            return Step::AssignCode {
                code: rng.code(book),
                user: rng.user(),
            };
        }
        if roll < 36 {
            let code = rng.code(book);
            let user = match owned(&code) {
                Some(owner) if rng.chance(75) => owner,
                _ => rng.user(),
            };
            let token = if rng.chance(30) {
                let tokens = self.tokens.lock().unwrap();
                tokens
                    .iter()
                    .rev()
                    .find(|(c, _)| *c == code)
                    .map(|(_, t)| t.clone())
            } else {
                None
            };
            return Step::Lock {
                code,
                user,
                ttl: 1 + rng.below(2) as u64,
                token,
            };
        }
        if roll < 46 {
            let picked = {
                let tokens = self.tokens.lock().unwrap();
                (!tokens.is_empty()).then(|| tokens[rng.below(tokens.len())].clone())
            };
            let (code, token) = match picked {
                Some((code, token)) if rng.chance(85) => (code, token),
                _ => (
                    rng.code(book),
                    format!("not-the-token-{}", rng.0.random::<u64>()),
                ),
            };
            return Step::Unlock { code, token };
        }
        if roll < 58 {
            let picked = {
                let tokens = self.tokens.lock().unwrap();
                (!tokens.is_empty()).then(|| tokens[rng.below(tokens.len())].clone())
            };
            if let Some((code, token)) = picked {
                let user = owned(&code).unwrap_or_else(|| rng.user());
                let order = order(rng);
                return Step::Redeem {
                    code,
                    user,
                    token: Some(token),
                    order,
                    context: None,
                    replay: false,
                };
            }
        }
        if roll >= 88 {
            let picked = {
                let orders = self.orders.lock().unwrap();
                (!orders.is_empty()).then(|| orders[rng.below(orders.len())].clone())
            };
            if let Some((code, user, order)) = picked {
                return Step::Redeem {
                    code,
                    user,
                    token: None,
                    order: Some(order),
                    context: None,
                    replay: true,
                };
            }
        }
        let code = rng.code(book);
        let user = match owned(&code) {
            Some(owner) if rng.chance(80) => owner,
            _ => rng.user(),
        };
        let order = order(rng);
        let context = rng
            .chance(30)
            .then(|| serde_json::json!({ "worker": worker, "n": rng.below(1000) }));
        Step::Redeem {
            code,
            user,
            token: None,
            order,
            context,
            replay: false,
        }
    }

    /// Records the outcome of `step`: `Ok`, or the error kind of a refusal or conflict;
    /// anything else is a failure.
    fn record(&self, worker: &str, step: &Step, outcome: Result<Done, ErrorKind>) {
        let name = step.name();
        let label = match outcome {
            Ok(done) => {
                if let Some((code, user)) = done.owner {
                    let mut owners = self.owners.lock().unwrap();
                    if let Some(previous) = owners.insert(code.clone(), user.clone()) {
                        if previous != user {
                            self.fail(format!(
                                "{worker}: {step:?} succeeded for {user}, but {code} was \
                                 seen held by {previous}"
                            ));
                        }
                    }
                }
                if let Some(token) = done.token {
                    let mut tokens = self.tokens.lock().unwrap();
                    tokens.push(token);
                    if tokens.len() > 48 {
                        tokens.remove(0);
                    }
                }
                if let Step::Redeem {
                    code,
                    user,
                    order,
                    replay,
                    ..
                } = step
                {
                    if done.replayed != *replay {
                        self.fail(format!(
                            "{worker}: {step:?} answered replayed={}",
                            done.replayed
                        ));
                    }
                    if let (Some(order), false) = (order, replay) {
                        self.orders.lock().unwrap().push((
                            code.clone(),
                            user.clone(),
                            order.clone(),
                        ));
                    }
                }
                if done.replayed {
                    "replayed".to_owned()
                } else {
                    "ok".to_owned()
                }
            }
            Err(kind) => {
                let expected = kind.is_refusal() || kind == ErrorKind::Conflict;
                let replay = matches!(step, Step::Redeem { replay: true, .. });
                if !expected {
                    self.fail(format!("{worker}: {step:?} failed with {kind}"));
                } else if replay && kind != ErrorKind::Conflict {
                    // The order id was redeemed by this very user: its receipt must come back.
                    self.fail(format!("{worker}: replay {step:?} refused with {kind}"));
                }
                kind.as_str().to_owned()
            }
        };
        let by = if worker.starts_with("thread") {
            "library"
        } else {
            "process"
        };
        *self
            .tally
            .lock()
            .unwrap()
            .entry((name, label, by))
            .or_default() += 1;
    }

    fn fail(&self, message: String) {
        eprintln!("soak failure: {message}");
        self.failures.lock().unwrap().push(message);
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Runs `step` through the library.
fn run_library<S: CouponStore>(coupons: &Coupons<S>, step: &Step) -> coupon_core::Result<Done> {
    match step {
        Step::AssignRandom { book, user, key } => {
            let coupon = coupons.assign_random(*book, user, key.as_deref())?;
            Ok(Done {
                owner: Some((coupon.code, user.clone())),
                ..Done::default()
            })
        }
        Step::AssignCode { code, user } => {
            let coupon = coupons.assign_code(code, user)?;
            Ok(Done {
                owner: Some((coupon.code, user.clone())),
                ..Done::default()
            })
        }
        Step::Lock {
            code,
            user,
            ttl,
            token,
        } => {
            let grant = coupons.lock(
                code,
                user,
                Some(Duration::from_secs(*ttl)),
                token.as_deref(),
            )?;
            Ok(Done {
                owner: Some((grant.code.clone(), user.clone())),
                token: Some((grant.code, grant.token)),
                ..Done::default()
            })
        }
        Step::Unlock { code, token } => {
            coupons.unlock(code, token)?;
            Ok(Done::default())
        }
        Step::Redeem {
            code,
            user,
            token,
            order,
            context,
            ..
        } => {
            let receipt = coupons.redeem(
                code,
                user,
                &RedeemRequest {
                    lock_token: token.clone(),
                    order_id: order.clone(),
                    context: context.clone(),
                },
            )?;
            Ok(Done {
                owner: Some((receipt.code, receipt.user_id)),
                replayed: receipt.replayed,
                ..Done::default()
            })
        }
    }
}

/// Runs `step` as one `coupon` process; `Err(message)` for a crash or an unreadable answer.
fn run_process(env: &Env, step: &Step) -> Result<Result<Done, ErrorKind>, String> {
    let args = step.args();
    let mut command = Command::new(env!("CARGO_BIN_EXE_coupon"));
    command
        .arg("--database-url")
        .arg(&env.url)
        .args(&args)
        .env_remove("COUPON_DATABASE_URL")
        .current_dir(env.dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = command.output().map_err(|e| format!("cannot run: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let describe = || {
        format!(
            "exit {:?}, stdout {stdout:?}, stderr {stderr:?}",
            out.status
        )
    };
    match out.status.code() {
        Some(0) => {
            let answer: Value =
                serde_json::from_slice(&out.stdout).map_err(|e| format!("{e}: {}", describe()))?;
            let text = |field: &str| answer[field].as_str().map(str::to_owned);
            let done = match step {
                Step::AssignRandom { user, .. } | Step::AssignCode { user, .. } => Done {
                    owner: Some((text("code").ok_or_else(describe)?, user.clone())),
                    ..Done::default()
                },
                Step::Lock { user, .. } => {
                    let code = text("code").ok_or_else(describe)?;
                    Done {
                        owner: Some((code.clone(), user.clone())),
                        token: Some((code, text("token").ok_or_else(describe)?)),
                        ..Done::default()
                    }
                }
                Step::Unlock { .. } => Done::default(),
                Step::Redeem { .. } => Done {
                    owner: Some((
                        text("code").ok_or_else(describe)?,
                        text("user_id").ok_or_else(describe)?,
                    )),
                    replayed: answer["replayed"].as_bool().ok_or_else(describe)?,
                    ..Done::default()
                },
            };
            Ok(Ok(done))
        }
        Some(status @ (4 | 6)) => {
            let err: Value =
                serde_json::from_slice(&out.stderr).map_err(|e| format!("{e}: {}", describe()))?;
            let name = err["error"]["kind"].as_str().ok_or_else(describe)?;
            let kind = ErrorKind::ALL
                .into_iter()
                .find(|k| k.as_str() == name)
                .ok_or_else(describe)?;
            if i32::from(coupon_cli_exit(kind)) != status {
                return Err(format!("{kind} with the wrong status: {}", describe()));
            }
            Ok(Err(kind))
        }
        _ => Err(describe()),
    }
}

/// The documented exit status of an error kind.
fn coupon_cli_exit(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Conflict => 6,
        kind if kind.is_refusal() => 4,
        _ => 1,
    }
}

/// The rows the invariants are about, read with SQL.
#[derive(Debug, Default)]
struct Snapshot {
    /// id → (max_redemptions_per_user, max_codes_per_user)
    books: BTreeMap<i64, (i64, Option<i64>)>,
    /// code → (book, owner, redemptions)
    codes: BTreeMap<String, (i64, Option<String>, i64)>,
    /// (code, user, order id, redemptions)
    redemptions: Vec<(String, String, Option<String>, i64)>,
    /// (seq, kind, code, user, data)
    events: Vec<EventRow>,
}

/// An event row: seq, kind, code, user, data (JSON text).
type EventRow = (i64, String, Option<String>, Option<String>, String);

const BOOKS_SQL: &str = "SELECT id, max_redemptions_per_user, max_codes_per_user FROM books";
const CODES_SQL: &str = "SELECT code, book_id, owner, redemptions FROM codes";
const REDEMPTIONS_SQL: &str = "SELECT code, user_id, order_id, redemptions FROM redemptions";

/// The rows of `env`'s database the invariants are about.
fn read_back(env: &Env) -> Snapshot {
    match &env.postgres {
        None => snapshot_sqlite(env),
        Some((server, schema)) => {
            // The Postgres store publishes events from its outbox into the `events` table
            // when the log is read: read it once, as a follower would, before reading the
            // table with SQL.
            env.json(&["events", "--limit", "1"]);
            snapshot_postgres(server, schema)
        }
    }
}

fn snapshot_sqlite(env: &Env) -> Snapshot {
    let db = coupon_store_sqlite::rusqlite::Connection::open(env.path("c.db")).unwrap();
    let mut snapshot = Snapshot::default();
    let mut query = db.prepare(BOOKS_SQL).unwrap();
    let mut rows = query.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        snapshot.books.insert(
            row.get(0).unwrap(),
            (row.get(1).unwrap(), row.get(2).unwrap()),
        );
    }
    let mut query = db.prepare(CODES_SQL).unwrap();
    let mut rows = query.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        snapshot.codes.insert(
            row.get(0).unwrap(),
            (
                row.get(1).unwrap(),
                row.get(2).unwrap(),
                row.get(3).unwrap(),
            ),
        );
    }
    let mut query = db.prepare(REDEMPTIONS_SQL).unwrap();
    let mut rows = query.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        snapshot.redemptions.push((
            row.get(0).unwrap(),
            row.get(1).unwrap(),
            row.get(2).unwrap(),
            row.get(3).unwrap(),
        ));
    }
    let mut query = db
        .prepare("SELECT seq, kind, code, user_id, data FROM events ORDER BY seq")
        .unwrap();
    let mut rows = query.query([]).unwrap();
    while let Some(row) = rows.next().unwrap() {
        snapshot.events.push((
            row.get(0).unwrap(),
            row.get(1).unwrap(),
            row.get(2).unwrap(),
            row.get(3).unwrap(),
            row.get(4).unwrap(),
        ));
    }
    snapshot
}

fn snapshot_postgres(server: &str, schema: &str) -> Snapshot {
    use coupon_store_postgres::postgres::{Client, NoTls};
    let mut db = Client::connect(server, NoTls).unwrap();
    db.batch_execute(&format!("SET search_path TO \"{schema}\""))
        .unwrap();
    let mut snapshot = Snapshot::default();
    for row in db.query(BOOKS_SQL, &[]).unwrap() {
        snapshot.books.insert(row.get(0), (row.get(1), row.get(2)));
    }
    for row in db.query(CODES_SQL, &[]).unwrap() {
        snapshot
            .codes
            .insert(row.get(0), (row.get(1), row.get(2), row.get(3)));
    }
    for row in db.query(REDEMPTIONS_SQL, &[]).unwrap() {
        snapshot
            .redemptions
            .push((row.get(0), row.get(1), row.get(2), row.get(3)));
    }
    let events = db
        .query(
            "SELECT seq, kind, code, user_id, data::text FROM events ORDER BY seq",
            &[],
        )
        .unwrap();
    for row in events {
        snapshot
            .events
            .push((row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)));
    }
    snapshot
}

/// Every invariant that does not hold, described.
fn violations(db: &Snapshot) -> Vec<String> {
    let mut bad = Vec::new();

    // The event log: seq is 1..=N, gap-free and strictly increasing.
    for (i, event) in db.events.iter().enumerate() {
        if event.0 != i as i64 + 1 {
            bad.push(format!("event #{} has seq {} (want {})", i, event.0, i + 1));
            break;
        }
    }

    // Each code's `assigned` events name one user, the code's owner, and there is one of them
    // for each owned code.
    let mut assigned: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (seq, kind, code, user, _) in &db.events {
        if kind == "assigned" {
            match (code, user) {
                (Some(code), Some(user)) => assigned.entry(code).or_default().push(user),
                _ => bad.push(format!("assigned event {seq} without code or user")),
            }
        }
    }
    for (code, users) in &assigned {
        let distinct: BTreeSet<_> = users.iter().collect();
        let owner = db.codes.get(*code).and_then(|c| c.1.as_deref());
        if distinct.len() != 1 || Some(users[0]) != owner {
            bad.push(format!(
                "{code}: assigned to {users:?} by events, owner {owner:?}"
            ));
        } else if users.len() != 1 {
            bad.push(format!("{code}: {} assigned events", users.len()));
        }
    }
    for (code, (_, owner, _)) in &db.codes {
        if owner.is_some() && !assigned.contains_key(code.as_str()) {
            bad.push(format!(
                "{code}: owned by {owner:?} without an assigned event"
            ));
        }
    }

    // Redemption counts: within the book's limit, and equal to the rows; the rows of a code
    // count 1, 2, … n.
    let mut rows: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (code, _, _, n) in &db.redemptions {
        rows.entry(code).or_default().push(*n);
    }
    for (code, (book, owner, redemptions)) in &db.codes {
        let Some((max_redemptions, _)) = db.books.get(book) else {
            bad.push(format!("{code}: book {book} missing"));
            continue;
        };
        if redemptions > max_redemptions {
            bad.push(format!(
                "{code}: {redemptions} redemptions, above the limit {max_redemptions}"
            ));
        }
        let mut counts = rows.remove(code.as_str()).unwrap_or_default();
        counts.sort_unstable();
        if counts.len() as i64 != *redemptions {
            bad.push(format!(
                "{code}: redemptions {redemptions}, but {} redemption rows",
                counts.len()
            ));
        }
        if counts != (1..=counts.len() as i64).collect::<Vec<_>>() {
            bad.push(format!("{code}: redemption rows count {counts:?}"));
        }
        if *redemptions > 0 && owner.is_none() {
            bad.push(format!("{code}: redeemed without an owner"));
        }
    }
    for code in rows.keys() {
        bad.push(format!("redemption rows of unknown code {code}"));
    }

    // No user holds more codes of a book than allowed.
    let mut held: BTreeMap<(i64, &str), i64> = BTreeMap::new();
    for (book, owner, _) in db.codes.values() {
        if let Some(owner) = owner {
            *held.entry((*book, owner)).or_default() += 1;
        }
    }
    for ((book, user), n) in &held {
        if let Some((_, Some(max))) = db.books.get(book) {
            if n > max {
                bad.push(format!(
                    "{user} holds {n} codes of book {book}, above {max}"
                ));
            }
        }
    }

    // Redemption rows and `redeemed` events match one to one: code, user, order id, count.
    type Key = (String, String, Option<String>, i64);
    let mut from_rows: BTreeMap<Key, usize> = BTreeMap::new();
    for row in &db.redemptions {
        *from_rows.entry(row.clone()).or_default() += 1;
    }
    let mut from_events: BTreeMap<Key, usize> = BTreeMap::new();
    for (seq, kind, code, user, data) in &db.events {
        if kind != "redeemed" {
            continue;
        }
        let data: Value = match serde_json::from_str(data) {
            Ok(data) => data,
            Err(e) => {
                bad.push(format!("redeemed event {seq}: data {data:?}: {e}"));
                continue;
            }
        };
        let (Some(code), Some(user), Some(n)) = (code, user, data["redemptions"].as_i64()) else {
            bad.push(format!("redeemed event {seq}: {code:?} {user:?} {data}"));
            continue;
        };
        let order = data["order_id"].as_str().map(str::to_owned);
        if !(data["order_id"].is_null() || order.is_some()) {
            bad.push(format!(
                "redeemed event {seq}: order id {}",
                data["order_id"]
            ));
        }
        *from_events
            .entry((code.clone(), user.clone(), order, n))
            .or_default() += 1;
    }
    for (key, n) in &from_rows {
        let m = from_events.get(key).copied().unwrap_or(0);
        if *n != 1 || m != 1 {
            bad.push(format!("redemption {key:?}: {n} rows, {m} redeemed events"));
        }
    }
    for (key, m) in &from_events {
        if !from_rows.contains_key(key) {
            bad.push(format!(
                "redeemed event {key:?} ({m}) without a redemption row"
            ));
        }
    }
    bad
}

/// The soak race on `env`'s database.
pub(super) fn soak(env: &Env) {
    for book in 1..=rounds() {
        let created = env.json(&[
            "book",
            "create",
            "--name",
            &format!("Soak {book}"),
            "--max-codes-per-user",
            &MAX_CODES_PER_USER.to_string(),
            "--max-redemptions-per-user",
            &MAX_REDEMPTIONS_PER_USER.to_string(),
            "--lock-ttl",
            "2s",
        ]);
        assert_eq!(created["id"], book);
        let csv: String = (0..CODES).map(|i| format!("SOAK-{book}-{i}\n")).collect();
        let path = env.write("codes.csv", &csv);
        let id = book.to_string();
        assert_eq!(
            env.json(&["codes", "import", &id, &path])["inserted"],
            CODES
        );
    }

    match &env.postgres {
        None => {
            let store = coupon_store_sqlite::SqliteStore::open(env.path("c.db")).unwrap();
            race(env, &Coupons::new(store));
        }
        Some(_) => {
            let store = coupon_store_postgres::PostgresStore::open(&env.url).unwrap();
            race(env, &Coupons::new(store));
        }
    }
}

fn race<S: CouponStore>(env: &Env, coupons: &Coupons<S>) {
    let duration = soak_time();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("soak: {} s, seed {seed}", duration.as_secs());
    let shared = Shared::default();
    let started = Instant::now();
    std::thread::scope(|scope| {
        let shared = &shared;
        let mut handles = Vec::new();
        for t in 0..THREADS {
            handles.push(scope.spawn(move || {
                let worker = format!("thread{t}");
                let mut rng =
                    Rng::seeded(seed ^ (t as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407));
                while started.elapsed() < duration && !shared.stop.load(Ordering::Relaxed) {
                    let step = shared.plan(&mut rng, &worker, round(started));
                    let outcome = run_library(coupons, &step).map_err(|e| e.kind());
                    shared.record(&worker, &step, outcome);
                }
            }));
        }
        for p in 0..PROCESSES {
            handles.push(scope.spawn(move || {
                let worker = format!("process{p}");
                let mut rng =
                    Rng::seeded(seed ^ (p as u64 + 101).wrapping_mul(0x9FB2_1C65_1E98_DF25));
                while started.elapsed() < duration && !shared.stop.load(Ordering::Relaxed) {
                    let step = shared.plan(&mut rng, &worker, round(started));
                    match run_process(env, &step) {
                        Ok(outcome) => shared.record(&worker, &step, outcome),
                        Err(message) => shared.fail(format!("{worker}: {step:?}: {message}")),
                    }
                }
            }));
        }
        for handle in handles {
            if let Err(panic) = handle.join() {
                let message = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                shared.fail(format!("a worker panicked: {message}"));
            }
        }
    });
    let elapsed = started.elapsed();

    let tally = shared.tally.into_inner().unwrap();
    let total: u64 = tally.values().sum();
    eprintln!("soak: {total} operations in {elapsed:.2?}");
    for ((step, outcome, by), n) in &tally {
        eprintln!("soak:   {step:<20} {outcome:<16} {by:<8} {n}");
    }

    let snapshot = read_back(env);
    eprintln!(
        "soak: database: {} events, {} redemptions, {} of {} codes owned",
        snapshot.events.len(),
        snapshot.redemptions.len(),
        snapshot.codes.values().filter(|c| c.1.is_some()).count(),
        snapshot.codes.len()
    );
    let bad = violations(&snapshot);
    let failures = shared.failures.into_inner().unwrap();
    assert!(
        failures.is_empty() && bad.is_empty(),
        "seed {seed}\nunexpected answers:\n{}\ninvariants broken:\n{}",
        failures.join("\n"),
        bad.join("\n")
    );

    let count = |f: &dyn Fn(&str, &str) -> bool| -> u64 {
        tally
            .iter()
            .filter(|((s, o, _), _)| f(s, o))
            .map(|(_, n)| n)
            .sum()
    };
    let redeemed = count(&|s, o| s.starts_with("redeem") && o == "ok");
    let replayed = count(&|_, o| o == "replayed");
    let refused = count(&|_, o| o != "ok" && o != "replayed");
    assert!(redeemed > 0, "no redeem succeeded");
    assert!(replayed > 0, "no redeem was replayed");
    assert!(refused > 0, "nothing was refused");
    assert_eq!(redeemed, snapshot.redemptions.len() as u64);
}

/// `kill -9` during a burst of redeems: every redeem whose process answered is in the
/// database, and the database holds no half of one (each redemption row has its event, counts
/// match, seq has no gap).
pub(super) fn killed_redeems_leave_commits_whole(env: &Env) {
    env.json(&[
        "book",
        "create",
        "--name",
        "Burst",
        "--max-redemptions-per-user",
        "1000",
    ]);
    let codes: Vec<String> = (0..8).map(|i| format!("BURST-{i}")).collect();
    let path = env.write("burst.csv", &codes.join("\n"));
    env.json(&["codes", "import", "1", &path]);
    for (i, code) in codes.iter().enumerate() {
        env.json(&["assign", "--code", code, "--user", &format!("user-{i}")]);
    }
    let mut rng = StdRng::seed_from_u64(7);
    let mut children = Vec::new();
    for n in 0..48 {
        let i = rng.random_range(0..codes.len());
        let order = format!("order-{n}");
        let user = format!("user-{i}");
        let args = [
            "--json",
            "redeem",
            &codes[i],
            "--user",
            &user,
            "--order-id",
            &order,
        ];
        let mut command = env.command(&args);
        command.stdin(std::process::Stdio::null());
        children.push((order, command.spawn().unwrap()));
        std::thread::sleep(Duration::from_millis(rng.random_range(0..8)));
        // Every other process is killed at a random moment, finished or not.
        if n % 2 == 1 {
            let _ = children[n - 1].1.kill();
        }
    }
    let (mut answered, mut killed) = (BTreeSet::new(), 0);
    for (order, child) in children {
        let out = child.wait_with_output().unwrap();
        match out.status.code() {
            Some(0) => {
                answered.insert(order);
            }
            None => killed += 1,
            Some(code) => panic!("exit {code}: {}", String::from_utf8_lossy(&out.stderr)),
        }
    }
    eprintln!(
        "{} redeems answered, {killed} processes killed",
        answered.len()
    );
    assert!(!answered.is_empty() && killed > 0, "{killed} killed");
    let snapshot = read_back(env);
    let bad = violations(&snapshot);
    assert!(bad.is_empty(), "{bad:#?}");
    let stored: BTreeSet<String> = snapshot
        .redemptions
        .iter()
        .filter_map(|r| r.2.clone())
        .collect();
    let lost: Vec<_> = answered.difference(&stored).collect();
    assert!(lost.is_empty(), "answered but not stored: {lost:?}");
    // The database takes new work.
    env.json(&[
        "redeem",
        &codes[0],
        "--user",
        "user-0",
        "--order-id",
        "after",
    ]);
}

/// `kill -9` in the middle of a generate leaves the book as it was: no code, no event.
pub(super) fn killed_generate_leaves_the_book_as_it_was(env: &Env) {
    env.json(&[
        "book",
        "create",
        "--name",
        "Big",
        "--pattern",
        "[A-Z0-9]{12}",
    ]);
    let before = read_back(env);
    let mut command = env.command(&["codes", "generate", "1", "--count", "5000000"]);
    command.stdin(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "generate ended already"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let after = read_back(env);
    assert!(after.codes.is_empty(), "{} codes left", after.codes.len());
    assert_eq!(after.events, before.events);
    env.json(&["codes", "generate", "1", "--count", "10"]);
}

/// The checker is not blind: each broken invariant of a hand-made database is reported.
#[test]
fn soak_checker_finds_broken_invariants() {
    let owned = |book: i64, owner: &str, n: i64| (book, Some(owner.to_owned()), n);
    let event = |seq: i64, kind: &str, code: &str, user: &str, data: Value| {
        let (code, user) = (Some(code.to_owned()), Some(user.to_owned()));
        (seq, kind.to_owned(), code, user, data.to_string())
    };
    let redeemed = |order: Option<&str>, n: i64| serde_json::json!({ "order_id": order, "context": null, "redemptions": n });
    let row = |code: &str, user: &str, order: Option<&str>, n: i64| {
        (
            code.to_owned(),
            user.to_owned(),
            order.map(str::to_owned),
            n,
        )
    };
    let good = || Snapshot {
        books: BTreeMap::from([(1, (2, Some(1)))]),
        codes: BTreeMap::from([
            ("A".to_owned(), owned(1, "ada", 2)),
            ("B".to_owned(), (1, None, 0)),
        ]),
        redemptions: vec![row("A", "ada", Some("o1"), 1), row("A", "ada", None, 2)],
        events: vec![
            event(1, "assigned", "A", "ada", Value::Null),
            event(2, "redeemed", "A", "ada", redeemed(Some("o1"), 1)),
            event(3, "redeemed", "A", "ada", redeemed(None, 2)),
        ],
    };
    assert_eq!(violations(&good()), Vec::<String>::new());

    let broken = |change: &dyn Fn(&mut Snapshot), expect: &str| {
        let mut db = good();
        change(&mut db);
        let found = violations(&db);
        assert!(
            found.iter().any(|v| v.contains(expect)),
            "{expect:?} not in {found:?}"
        );
    };
    broken(&|db| db.events[2].0 = 4, "has seq 4");
    broken(
        &|db| {
            db.events
                .push(event(4, "assigned", "A", "bob", Value::Null))
        },
        "assigned to",
    );
    broken(
        &|db| {
            db.codes.insert("B".to_owned(), owned(1, "ada", 0));
        },
        "without an assigned event",
    );
    broken(
        &|db| {
            db.codes.insert("A".to_owned(), owned(1, "ada", 3));
            db.redemptions.push(row("A", "ada", None, 3));
            db.events
                .push(event(4, "redeemed", "A", "ada", redeemed(None, 3)));
        },
        "above the limit",
    );
    broken(&|db| drop(db.redemptions.pop()), "redemption rows");
    broken(
        &|db| {
            db.codes.insert("B".to_owned(), owned(1, "ada", 0));
            db.events
                .push(event(4, "assigned", "B", "ada", Value::Null));
        },
        "holds 2 codes",
    );
    broken(
        &|db| db.events[1].4 = redeemed(Some("o2"), 1).to_string(),
        "without a redemption row",
    );
}
