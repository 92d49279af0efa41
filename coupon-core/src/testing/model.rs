//! The model-based property test: random sequences of operations and clock advances run on a
//! store and on a plain model of SPEC §5; both must agree on every result and on the final state.

use std::collections::HashMap;
use std::time::Duration;

use chrono::TimeDelta;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

use super::{rows, start, Ctx, Fixture, Teardown};
use crate::store::CouponStore;
use crate::{BookSettings, CodeState, Error, ErrorKind, EventKind, RedeemRequest, Timestamp};

const CODES: [&str; 5] = ["M0", "M1", "M2", "M3", "M4"];
const USERS: [&str; 3] = ["ann", "bob", "cy"];
const TTL: u64 = 60;

/// Which token an operation presents.
#[derive(Debug, Clone, Copy)]
enum Token {
    None,
    /// The last token the store granted for the code.
    Last,
    Wrong,
}

#[derive(Debug, Clone)]
enum Op {
    AssignRandom {
        user: usize,
        key: Option<u8>,
    },
    AssignCode {
        code: usize,
        user: usize,
    },
    Lock {
        code: usize,
        user: usize,
        token: Token,
    },
    Unlock {
        code: usize,
        token: Token,
    },
    Redeem {
        code: usize,
        user: usize,
        token: Token,
        order: Option<u8>,
    },
    Void {
        code: usize,
    },
    Advance {
        secs: u64,
    },
}

fn token() -> impl Strategy<Value = Token> {
    prop_oneof![Just(Token::None), Just(Token::Last), Just(Token::Wrong)]
}

fn op() -> impl Strategy<Value = Op> {
    let code = 0..CODES.len();
    let user = 0..USERS.len();
    prop_oneof![
        3 => (user.clone(), proptest::option::of(0u8..2))
            .prop_map(|(user, key)| Op::AssignRandom { user, key }),
        2 => (code.clone(), user.clone()).prop_map(|(code, user)| Op::AssignCode { code, user }),
        3 => (code.clone(), user.clone(), token())
            .prop_map(|(code, user, token)| Op::Lock { code, user, token }),
        1 => (code.clone(), token()).prop_map(|(code, token)| Op::Unlock { code, token }),
        4 => (code.clone(), user, token(), proptest::option::of(0u8..3))
            .prop_map(|(code, user, token, order)| Op::Redeem { code, user, token, order }),
        1 => code.prop_map(|code| Op::Void { code }),
        2 => prop_oneof![Just(1u64), Just(TTL), Just(TTL + 1), Just(400)]
            .prop_map(|secs| Op::Advance { secs }),
    ]
}

/// The book of a case: limits and a window that the advances can cross.
#[derive(Debug, Clone)]
struct Setup {
    max_redemptions: u32,
    max_codes: Option<u32>,
    starts_in: Option<u64>,
    ends_in: Option<u64>,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        1u32..4,
        proptest::option::of(1u32..3),
        proptest::option::of(Just(100u64)),
        proptest::option::of(Just(900u64)),
    )
        .prop_map(|(max_redemptions, max_codes, starts_in, ends_in)| Setup {
            max_redemptions,
            max_codes,
            starts_in,
            ends_in,
        })
}

#[derive(Debug, Clone, Default)]
struct Code {
    owner: Option<usize>,
    redemptions: u32,
    lock: Option<(String, Timestamp)>,
    void: bool,
}

/// A plain model of one book, written from the spec without the library's rules.
struct Model {
    setup: Setup,
    now: Timestamp,
    codes: Vec<Code>,
    /// (code, order id) → (user, redemptions after, remaining after).
    orders: HashMap<(usize, u8), (usize, u32, u32)>,
    keys: HashMap<(usize, u8), usize>,
    events: Vec<EventKind>,
}

type Outcome = Result<(), ErrorKind>;

impl Model {
    fn held(&self, user: usize) -> u32 {
        self.codes
            .iter()
            .filter(|c| c.owner == Some(user) && !c.void)
            .count() as u32
    }

    fn expired(&self) -> bool {
        self.setup
            .ends_in
            .is_some_and(|s| self.now >= start() + secs(s))
    }

    fn not_yet_valid(&self) -> bool {
        self.setup
            .starts_in
            .is_some_and(|s| self.now < start() + secs(s))
    }

    fn live(&self, code: usize) -> Option<&String> {
        self.codes[code]
            .lock
            .as_ref()
            .filter(|(_, until)| *until > self.now)
            .map(|(t, _)| t)
    }

    fn cap(&self, user: usize) -> Outcome {
        match self.setup.max_codes {
            Some(max) if self.held(user) >= max => Err(ErrorKind::LimitReached),
            _ => Ok(()),
        }
    }

    fn take(&mut self, code: usize, user: usize) {
        self.codes[code].owner = Some(user);
        self.events.push(EventKind::Assigned);
    }

    fn owner_and_usable(&self, code: usize, user: usize) -> Outcome {
        let c = &self.codes[code];
        if c.owner.is_some_and(|o| o != user) {
            return Err(ErrorKind::NotOwner);
        }
        if c.void {
            return Err(ErrorKind::Void);
        }
        if c.redemptions >= self.setup.max_redemptions {
            return Err(ErrorKind::Exhausted);
        }
        if self.not_yet_valid() {
            return Err(ErrorKind::NotYetValid);
        }
        if self.expired() {
            return Err(ErrorKind::Expired);
        }
        Ok(())
    }

    fn state(&self, code: usize) -> CodeState {
        let c = &self.codes[code];
        if c.void {
            CodeState::Void
        } else if c.owner.is_none() {
            CodeState::Available
        } else if c.redemptions >= self.setup.max_redemptions {
            CodeState::Redeemed
        } else if self.expired() {
            CodeState::Expired
        } else if self.live(code).is_some() {
            CodeState::Locked
        } else {
            CodeState::Active
        }
    }
}

fn secs(s: u64) -> TimeDelta {
    TimeDelta::seconds(s as i64)
}

fn kind<T>(r: &crate::Result<T>) -> Outcome {
    r.as_ref().map(|_| ()).map_err(Error::kind)
}

fn agree(step: usize, op: &Op, store: Outcome, model: Outcome) -> Result<(), TestCaseError> {
    if store != model {
        return Err(TestCaseError::fail(format!(
            "step {step} {op:?}: store answered {store:?}, model expects {model:?}"
        )));
    }
    Ok(())
}

/// Runs the property on stores made by `setup`.
pub fn check<S: CouponStore>(setup_store: impl Fn() -> Option<Fixture<S>>) {
    let cases = std::env::var("COUPON_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (setup(), proptest::collection::vec(op(), 1..60));
    let skipped = std::cell::Cell::new(false);
    let result = runner.run(&strategy, |(book, ops)| {
        let Some(fixture) = setup_store() else {
            skipped.set(true);
            return Ok(());
        };
        let _teardown = Teardown(fixture.teardown);
        run_case(Ctx::new(fixture.store), book, &ops)
    });
    if skipped.get() {
        eprintln!("skipped model_agrees_with_store: no store configured for this backend");
    }
    if let Err(e) = result {
        panic!("store and model disagree: {e}");
    }
}

fn run_case<S: CouponStore>(t: Ctx<S>, book: Setup, ops: &[Op]) -> Result<(), TestCaseError> {
    let id = t.book(BookSettings {
        max_redemptions_per_user: book.max_redemptions,
        max_codes_per_user: book.max_codes,
        valid_from: book.starts_in.map(|s| start() + secs(s)),
        valid_until: book.ends_in.map(|s| start() + secs(s)),
        lock_ttl: Duration::from_secs(TTL),
        ..BookSettings::new("model")
    });
    t.coupons
        .import_codes(id, rows(&CODES), false)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut m = Model {
        setup: book,
        now: start(),
        codes: vec![Code::default(); CODES.len()],
        orders: HashMap::new(),
        keys: HashMap::new(),
        events: vec![EventKind::BookCreated, EventKind::CodesAdded],
    };
    let c = &t.coupons;
    let token_for = |m: &Model, code: usize, choice: Token| match choice {
        Token::None => None,
        Token::Last => Some(
            m.codes[code]
                .lock
                .as_ref()
                .map_or_else(|| "no-lock-yet".to_owned(), |(t, _)| t.clone()),
        ),
        Token::Wrong => Some("wrong-token".to_owned()),
    };
    for (step, op) in ops.iter().enumerate() {
        match *op {
            Op::Advance { secs: s } => {
                t.advance(s);
                m.now += secs(s);
            }
            Op::AssignRandom { user, key } => {
                let key_text = key.map(|k| format!("key-{k}"));
                let got = c.assign_random(id, USERS[user], key_text.as_deref());
                let expected = if let Some(&code) = key.and_then(|k| m.keys.get(&(user, k))) {
                    let coupon = got.as_ref().ok();
                    prop_assert_eq!(coupon.map(|c| c.code.as_str()), Some(CODES[code]));
                    Ok(())
                } else if m.expired() {
                    Err(ErrorKind::Expired)
                } else if let Err(e) = m.cap(user) {
                    Err(e)
                } else if !m.codes.iter().any(|c| c.owner.is_none() && !c.void) {
                    Err(ErrorKind::SoldOut)
                } else {
                    let coupon = got.as_ref().map_err(|e| {
                        TestCaseError::fail(format!("step {step} {op:?}: store refused {e}"))
                    })?;
                    let code = CODES.iter().position(|c| *c == coupon.code);
                    let code = code.ok_or_else(|| TestCaseError::fail("unknown code"))?;
                    prop_assert!(
                        m.codes[code].owner.is_none() && !m.codes[code].void,
                        "step {}: store handed out {} which is not available",
                        step,
                        coupon.code
                    );
                    m.take(code, user);
                    if let Some(k) = key {
                        m.keys.insert((user, k), code);
                    }
                    Ok(())
                };
                agree(step, op, kind(&got), expected)?;
            }
            Op::AssignCode { code, user } => {
                let got = c.assign_code(CODES[code], USERS[user]);
                let cd = &m.codes[code];
                let expected = if cd.owner.is_some_and(|o| o != user) {
                    Err(ErrorKind::NotOwner)
                } else if cd.void {
                    Err(ErrorKind::Void)
                } else if cd.owner == Some(user) {
                    Ok(())
                } else if m.expired() {
                    Err(ErrorKind::Expired)
                } else {
                    m.cap(user).map(|()| m.take(code, user))
                };
                agree(step, op, kind(&got), expected)?;
            }
            Op::Lock { code, user, token } => {
                let given = token_for(&m, code, token);
                let got = c.lock(CODES[code], USERS[user], None, given.as_deref());
                let expected = m.owner_and_usable(code, user).and_then(|()| {
                    match (m.live(code).cloned(), given.as_ref()) {
                        (Some(live), Some(g)) if live == *g => Ok(()),
                        (Some(_), Some(_)) => Err(ErrorKind::BadLockToken),
                        (Some(_), None) => Err(ErrorKind::Locked),
                        (None, _) if m.codes[code].owner.is_none() => m.cap(user),
                        (None, _) => Ok(()),
                    }
                });
                agree(step, op, kind(&got), expected)?;
                if let Ok(grant) = got {
                    if let Some(live) = m.live(code) {
                        prop_assert_eq!(&grant.token, live, "an extended lock keeps its token");
                    }
                    if m.codes[code].owner.is_none() {
                        m.take(code, user);
                    }
                    prop_assert_eq!(grant.expires_at, m.now + secs(TTL));
                    m.codes[code].lock = Some((grant.token, grant.expires_at));
                    m.events.push(EventKind::Locked);
                }
            }
            Op::Unlock { code, token } => {
                let given = token_for(&m, code, token).unwrap_or_else(|| "none-given".into());
                let got = c.unlock(CODES[code], &given);
                let expected = match m.live(code) {
                    Some(live) if *live == given => {
                        m.codes[code].lock = None;
                        m.events.push(EventKind::Unlocked);
                        Ok(())
                    }
                    Some(_) => Err(ErrorKind::BadLockToken),
                    None => Ok(()),
                };
                agree(step, op, kind(&got), expected)?;
            }
            Op::Redeem {
                code,
                user,
                token,
                order,
            } => {
                let request = RedeemRequest {
                    lock_token: token_for(&m, code, token),
                    order_id: order.map(|o| format!("order-{o}")),
                    context: None,
                };
                let got = c.redeem(CODES[code], USERS[user], &request);
                let expected = if let Some(&(by, n, left)) =
                    order.and_then(|o| m.orders.get(&(code, o)))
                {
                    if by == user {
                        let receipt = got.as_ref().map_err(|e| {
                            TestCaseError::fail(format!("step {step} {op:?}: replay refused {e}"))
                        })?;
                        prop_assert!(receipt.replayed);
                        prop_assert_eq!((receipt.redemptions, receipt.remaining), (n, left));
                        Ok(())
                    } else {
                        Err(ErrorKind::NotOwner)
                    }
                } else {
                    let verdict = m.owner_and_usable(code, user).and_then(|()| {
                        match (m.live(code), request.lock_token.as_ref()) {
                            (Some(_), None) => Err(ErrorKind::Locked),
                            (Some(live), Some(g)) if live != g => Err(ErrorKind::BadLockToken),
                            _ if m.codes[code].owner.is_none() => m.cap(user),
                            _ => Ok(()),
                        }
                    });
                    if verdict.is_ok() {
                        if m.codes[code].owner.is_none() {
                            m.take(code, user);
                        }
                        let cd = &mut m.codes[code];
                        cd.redemptions += 1;
                        cd.lock = None;
                        let n = cd.redemptions;
                        let left = m.setup.max_redemptions - n;
                        if let Some(o) = order {
                            m.orders.insert((code, o), (user, n, left));
                        }
                        m.events.push(EventKind::Redeemed);
                        let receipt = got.as_ref().ok();
                        prop_assert_eq!(
                            receipt.map(|r| (r.redemptions, r.remaining, r.replayed)),
                            Some((n, left, false)),
                            "step {}",
                            step
                        );
                    }
                    verdict
                };
                agree(step, op, kind(&got), expected)?;
            }
            Op::Void { code } => {
                let got = c.void_code(CODES[code]);
                if !m.codes[code].void {
                    m.codes[code].void = true;
                    m.codes[code].lock = None;
                    m.events.push(EventKind::Voided);
                }
                agree(step, op, kind(&got), Ok(()))?;
            }
        }
    }
    for (i, code) in CODES.iter().enumerate() {
        let coupon = c
            .coupon(code)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let cd = &m.codes[i];
        prop_assert_eq!(coupon.state, m.state(i), "final state of {}", code);
        prop_assert_eq!(coupon.user_id.as_deref(), cd.owner.map(|u| USERS[u]));
        prop_assert_eq!(coupon.redemptions, cd.redemptions);
    }
    let kinds: Vec<EventKind> = c
        .events(0, 10_000)
        .map_err(|e| TestCaseError::fail(e.to_string()))?
        .into_iter()
        .map(|e| e.kind)
        .collect();
    prop_assert_eq!(kinds, m.events.clone());
    for (u, user) in USERS.iter().enumerate() {
        let held = c
            .user_coupons(user, Some(id), None)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected = m.codes.iter().filter(|c| c.owner == Some(u)).count();
        prop_assert_eq!(held.len(), expected, "codes of {}", user);
    }
    Ok(())
}
