//! Generation: adding `count` new codes drawn uniformly from a book's pattern.
//!
//! The plan is exact and always ends:
//! - the pattern's size is exact; `count` beyond the free part of the space is refused before
//!   anything is written;
//! - while the free space is at least twice `count`, codes are drawn independently and
//!   uniformly, in code order ([`Pattern::sample_sorted`]), and stored in batches; a draw
//!   that repeats another or collides with a stored code is made up for by drawing again
//!   (expected draws stay below 1.4 × `count`), so every set of `count` free codes is equally
//!   likely;
//! - otherwise the space is small enough to **enumerate**: the taken codes are marked in a bitmap
//!   of the space, and selection sampling (Knuth's algorithm S) picks exactly `count` of the free
//!   codes, each subset equally likely, in one ordered pass;
//! - the guessability guard refuses books where a guess would hit too often.
//!
//! Everything happens in one transaction: either all `count` codes are stored or none are.

use num_bigint::BigUint;
use num_traits::{ToPrimitive, Zero};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use crate::coupons::{append, load_book};
use crate::pattern::Pattern;
use crate::store::{CodeFate, CouponStore, StoreTx};
use crate::{
    BookId, Coupons, Error, ErrorKind, EventKind, GenerateReport, NewEvent, Result, Timestamp,
};

/// How many codes go to the store at once.
pub const GENERATE_BATCH: usize = 10_000;
/// The guessability guard refuses a book whose codes fill more than 1 / this of the space.
pub const GUESS_GUARD: u32 = 1000;
/// The largest space that is enumerated when it is dense (one bit per code of the space).
const MAX_ENUMERATED_SPACE: u64 = 1 << 33;
/// How many batches in a row may add nothing before generation gives up.
const MAX_BARREN_ROUNDS: u32 = 64;
/// How many store codes are read at a time when counting the taken part of a space.
const SCAN_PAGE: usize = 10_000;

/// How the codes will be drawn.
enum Plan {
    /// Rejection sampling: the free space is at least twice the count.
    Sparse,
    /// Selection among the free codes of a small, dense space: one bit per code of the space.
    Dense { taken: Vec<u64>, free: u64 },
}

impl<S: CouponStore> Coupons<S> {
    /// Adds exactly `count` new codes drawn uniformly from the book's pattern, each unique in the
    /// whole store, with a cryptographically secure RNG.
    ///
    /// Refused before anything is written: a book without a pattern (`invalid_input`), `count`
    /// beyond the free part of the space (`infeasible`), or — unless `allow_guessable` — a book
    /// whose codes would fill more than 1/1000 of the space (`infeasible`). The report states
    /// the `space` and the `guess_probability`.
    ///
    /// # Errors
    /// `invalid_input`, `invalid_pattern`, `not_found`, `infeasible`.
    ///
    /// ```
    /// use coupon_core::{BookSettings, Coupons, ErrorKind, MemoryStore};
    /// let coupons = Coupons::new(MemoryStore::new());
    /// let book = coupons.create_book(&BookSettings {
    ///     code_pattern: Some("[0-9]{4}".into()),
    ///     ..BookSettings::new("Tiny")
    /// })?;
    /// let err = coupons.generate_codes(book.id, 100, false).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::Infeasible); // 100 of 10,000 is too easy to guess
    /// let report = coupons.generate_codes(book.id, 100, true)?;
    /// assert_eq!((report.generated, report.space.as_str()), (100, "10000"));
    /// # Ok::<(), coupon_core::Error>(())
    /// ```
    pub fn generate_codes(
        &self,
        book: BookId,
        count: u64,
        allow_guessable: bool,
    ) -> Result<GenerateReport> {
        if count == 0 {
            return Err(Error::invalid_input(
                "count must be at least 1 code to generate",
            ));
        }
        self.write(|tx, now| {
            let book = load_book(tx, book)?;
            let Some(source) = &book.settings.code_pattern else {
                return Err(Error::invalid_input(format!(
                    "book {} has no code_pattern; set one to generate codes",
                    book.id
                )));
            };
            let pattern = Pattern::parse(source)?;
            let space = pattern.size();
            let in_book = tx
                .tally(book.id, book.settings.max_redemptions_per_user, now)?
                .codes;
            let plan = plan(tx, &pattern, count)?;
            let after = BigUint::from(in_book) + count;
            if !allow_guessable && after.clone() * GUESS_GUARD > *space {
                return Err(Error::new(
                    ErrorKind::Infeasible,
                    format!(
                        "pattern {source:?} has {space} codes; with {after} of them in the book one guess in {} would hit (more than 1 in {GUESS_GUARD}); use a longer pattern or allow guessable codes",
                        (space.clone() / &after).max(BigUint::from(1u8))
                    ),
                ));
            }
            match plan {
                Plan::Sparse => generate_sparse(tx, book.id, &pattern, count, now)?,
                Plan::Dense { taken, free } => {
                    generate_dense(tx, book.id, &pattern, count, &taken, free, now)?
                }
            }
            append(
                tx,
                now,
                vec![NewEvent::book(
                    EventKind::CodesAdded,
                    book.id,
                    json!({ "count": count, "source": "generate" }),
                )],
            )?;
            Ok(GenerateReport {
                book_id: book.id,
                generated: count,
                pattern: source.clone(),
                space: space.to_string(),
                guess_probability: ratio(&after, space),
            })
        })
    }
}

/// Decides how to draw `count` codes, refusing when the free space is too small.
fn plan(tx: &mut dyn StoreTx, pattern: &Pattern, count: u64) -> Result<Plan> {
    let space = pattern.size();
    let stored = tx.code_count()?;
    // Every stored code could be in the space: if even then twice `count` is free, sample.
    if *space >= BigUint::from(stored) + BigUint::from(count) * 2u8 {
        return Ok(Plan::Sparse);
    }
    let (taken_count, taken) = taken_codes(tx, pattern)?;
    let free = space - BigUint::from(taken_count);
    if BigUint::from(count) > free {
        return Err(Error::new(
            ErrorKind::Infeasible,
            format!(
                "pattern {:?} has {space} codes, {taken_count} are taken, {count} requested; use a longer pattern",
                pattern.as_str()
            ),
        ));
    }
    if free >= BigUint::from(count) * 2u8 {
        return Ok(Plan::Sparse);
    }
    let free = free.to_u64().unwrap_or(u64::MAX);
    match taken {
        Some(taken) => Ok(Plan::Dense { taken, free }),
        None => Err(Error::new(
            ErrorKind::Infeasible,
            format!(
                "pattern {:?} has {space} codes, too many to pick {count} of the {free} free ones; use a longer pattern",
                pattern.as_str()
            ),
        )),
    }
}

/// Counts the store's codes that are in the pattern's space and, when the space is small enough,
/// marks them in a bitmap indexed by rank.
fn taken_codes(tx: &mut dyn StoreTx, pattern: &Pattern) -> Result<(u64, Option<Vec<u64>>)> {
    let size = pattern
        .size()
        .to_u64()
        .filter(|&s| s <= MAX_ENUMERATED_SPACE);
    let mut bitmap = size.map(|s| vec![0u64; s.div_ceil(64) as usize]);
    let mut taken = 0u64;
    let mut after: Option<String> = None;
    loop {
        let page = tx.codes_after(None, after.as_deref(), SCAN_PAGE)?;
        for record in &page {
            if let Some(rank) = pattern.rank(&record.code) {
                taken += 1;
                if let (Some(bits), Some(rank)) = (bitmap.as_mut(), rank.to_u64()) {
                    bits[(rank / 64) as usize] |= 1 << (rank % 64);
                }
            }
        }
        match page.last() {
            Some(last) if page.len() == SCAN_PAGE => after = Some(last.code.clone()),
            _ => return Ok((taken, bitmap)),
        }
    }
}

fn generate_sparse(
    tx: &mut dyn StoreTx,
    book: BookId,
    pattern: &Pattern,
    count: u64,
    now: Timestamp,
) -> Result<()> {
    let mut rng = StdRng::from_os_rng();
    let mut added = 0u64;
    let mut barren = 0;
    let mut batch = Vec::with_capacity(GENERATE_BATCH);
    while added < count {
        // Draws come in code order, which stores insert fastest; a draw that repeats one
        // or collides with a stored code is made up for in the next round.
        let before = added;
        let want = count - added;
        let mut store = |batch: &mut Vec<String>| -> Result<()> {
            let fates = tx.add_codes(book, batch, now)?;
            added += fates.iter().filter(|f| **f == CodeFate::Inserted).count() as u64;
            batch.clear();
            Ok(())
        };
        pattern.sample_sorted(want, &mut rng, |chunk| {
            batch.append(chunk);
            if batch.len() >= GENERATE_BATCH {
                store(&mut batch)?;
            }
            Ok(())
        })?;
        if !batch.is_empty() {
            store(&mut batch)?;
        }
        barren = if added == before { barren + 1 } else { 0 };
        if barren == MAX_BARREN_ROUNDS {
            return Err(Error::new(
                ErrorKind::Conflict,
                "the pattern's space filled up while generating; try again",
            ));
        }
    }
    Ok(())
}

fn generate_dense(
    tx: &mut dyn StoreTx,
    book: BookId,
    pattern: &Pattern,
    count: u64,
    taken: &[u64],
    free: u64,
    now: Timestamp,
) -> Result<()> {
    let mut rng = StdRng::from_os_rng();
    let mut needed = count;
    let mut left = free;
    let mut batch = Vec::with_capacity(GENERATE_BATCH);
    for (rank, code) in pattern.iter_from(&BigUint::zero()).enumerate() {
        if needed == 0 {
            break;
        }
        let rank = rank as u64;
        if taken[(rank / 64) as usize] & (1 << (rank % 64)) != 0 {
            continue;
        }
        // Algorithm S: keep this free code with probability needed / left.
        if rng.random_range(0..left) < needed {
            batch.push(code);
            needed -= 1;
            if batch.len() == GENERATE_BATCH {
                add_all(tx, book, &batch, now)?;
                batch.clear();
            }
        }
        left -= 1;
    }
    add_all(tx, book, &batch, now)
}

/// Adds codes known to be free; a code taken meanwhile by another writer is a conflict.
fn add_all(tx: &mut dyn StoreTx, book: BookId, codes: &[String], now: Timestamp) -> Result<()> {
    if codes.is_empty() {
        return Ok(());
    }
    let fates = tx.add_codes(book, codes, now)?;
    if fates.iter().any(|f| *f != CodeFate::Inserted) {
        return Err(Error::new(
            ErrorKind::Conflict,
            "codes of the pattern were added concurrently; try again",
        ));
    }
    Ok(())
}

fn ratio(numerator: &BigUint, denominator: &BigUint) -> f64 {
    match (numerator.to_f64(), denominator.to_f64()) {
        (Some(n), Some(d)) if d > 0.0 => n / d,
        _ => 0.0,
    }
}
