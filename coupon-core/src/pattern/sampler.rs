//! Exactly uniform sampling over the strings of a pattern.
//!
//! A sample is a walk through the DFA from the start. In a state that is not accepting and
//! has a single group of transitions, every continuation is equally likely, so a symbol of
//! the group is drawn uniformly. Elsewhere the walk stops or takes a group with probability
//! proportional to the number of strings it leads to, then draws a symbol of the group
//! uniformly. Each string thus comes out with probability `1 / size`.
//!
//! Draws use Lemire's multiply-and-reject method, which is unbiased. A run of forced states
//! whose group sizes multiply to at most 2^64 takes a single 64-bit draw, whose symbols are
//! the digits of the product, peeled by repeated widening multiplication (`[A-Z0-9]{12}` is
//! one draw). Weights use `u64` when the whole language fits and fixed-width 384-bit
//! integers otherwise, so sampling never allocates (beyond growing the output string).

use std::cmp::Ordering;
use std::fmt;

use num_bigint::BigUint;
use num_traits::ToPrimitive;
use rand::Rng;

use super::automaton::Dfa;
use super::{symbol_char, SYMBOLS};

/// The precomputed tables of a pattern's sampler.
#[derive(Debug)]
pub(super) struct Tables {
    start: usize,
    states: Vec<Node>,
    groups: Vec<Group>,
    /// The groups of each [`Run`], one after the other.
    run_groups: Vec<u32>,
    weights: Weights,
    max_len: usize,
}

/// What a state does during a walk.
#[derive(Clone, Copy, Debug)]
enum Step {
    /// Accepting without transitions: the walk ends.
    Stop,
    /// Not accepting and a single group: the walk is forced.
    Run(Run),
    /// Choose by weight among stopping (if accepting) and the groups.
    Choose,
}

/// Forced states in a row whose group sizes multiply to at most `u64::MAX`: their symbols
/// are the digits of one draw below that product.
#[derive(Clone, Copy, Debug)]
struct Run {
    /// The run's groups in [`Tables::run_groups`].
    groups: usize,
    steps: usize,
    /// The state after the run.
    end: usize,
    draw: Draw,
}

/// A state of the DFA, as the sampler sees it.
#[derive(Debug)]
struct Node {
    step: Step,
    accept: bool,
    /// The state's groups in [`Tables::groups`].
    first_group: usize,
    end_group: usize,
}

impl Node {
    /// Whether a walk reaching the state must take its single group.
    fn is_forced(&self) -> bool {
        !self.accept && self.end_group - self.first_group == 1
    }
}

/// The transitions of a state to one target.
#[derive(Debug)]
struct Group {
    target: usize,
    /// Draws an index into `chars`; its range is the number of symbols.
    pick: Draw,
    chars: [u8; SYMBOLS],
}

/// The weights of the choices in [`Step::Choose`] states, indexed like the states (`total`)
/// and like the groups (`block`: the number of strings reached through the group).
#[derive(Debug)]
enum Weights {
    Small { total: Vec<Draw>, block: Vec<u64> },
    Wide { total: Vec<Wide>, block: Vec<Wide> },
}

/// Unbiased draws below `range` (at least 1), by Lemire's multiply-and-reject method.
#[derive(Clone, Copy, Debug)]
struct Draw {
    range: u64,
    /// 2^64 mod `range`: random words whose product with `range` has a low word below
    /// this are rejected, leaving the same number of words for each high word.
    threshold: u64,
}

impl Draw {
    fn new(range: u64) -> Draw {
        Draw {
            range,
            threshold: range.wrapping_neg().checked_rem(range).unwrap_or(0),
        }
    }

    /// A random word `x` such that `x · range / 2^64` is uniform in `0..range`; its
    /// mixed-radix digits come out of repeated [`widening_mul`]. No draw for a range of 1.
    #[inline]
    fn fraction<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        if self.range == 1 {
            return 0;
        }
        loop {
            let x = rng.next_u64();
            if x.wrapping_mul(self.range) >= self.threshold {
                return x;
            }
        }
    }

    /// A uniform draw in `0..range`.
    #[inline]
    fn below<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        widening_mul(self.fraction(rng), self.range).0
    }
}

/// The high and low words of `x · k`.
#[inline]
fn widening_mul(x: u64, k: u64) -> (u64, u64) {
    let product = u128::from(x) * u128::from(k);
    ((product >> 64) as u64, product as u64)
}

impl Tables {
    pub(super) fn new(dfa: &Dfa) -> Tables {
        let small = dfa.size().to_u64().is_some();
        let mut states = Vec::with_capacity(dfa.states().len());
        let mut groups = Vec::new();
        let mut blocks: Vec<BigUint> = Vec::new();
        for state in dfa.states() {
            let first_group = groups.len();
            for edge in &state.edges {
                let mut chars = [0; SYMBOLS];
                let mut len = 0;
                for symbol in (0..SYMBOLS).filter(|s| edge.symbols & (1 << s) != 0) {
                    chars[len] = symbol_char(symbol);
                    len += 1;
                }
                groups.push(Group {
                    target: edge.target as usize,
                    pick: Draw::new(len as u64),
                    chars,
                });
                blocks.push(dfa.count(edge.target) * len);
            }
            states.push(Node {
                // Set below, once every group is known.
                step: Step::Stop,
                accept: state.accept,
                first_group,
                end_group: groups.len(),
            });
        }
        let mut run_groups = Vec::new();
        for index in 0..states.len() {
            let node = &states[index];
            states[index].step = if node.is_forced() {
                Step::Run(run_from(index, &states, &groups, &mut run_groups))
            } else if node.first_group == node.end_group {
                Step::Stop
            } else {
                Step::Choose
            };
        }
        let totals = (0..dfa.states().len()).map(|state| dfa.count(state as u32));
        let weights = if small {
            let small = |count: &BigUint| count.to_u64().expect("every count is at most the size");
            Weights::Small {
                total: totals.map(|total| Draw::new(small(total))).collect(),
                block: blocks.iter().map(small).collect(),
            }
        } else {
            Weights::Wide {
                total: totals.map(Wide::from_big).collect(),
                block: blocks.iter().map(Wide::from_big).collect(),
            }
        };
        Tables {
            start: dfa.start() as usize,
            states,
            groups,
            run_groups,
            weights,
            max_len: dfa.max_len(),
        }
    }

    /// The group to take from `state`, or `None` to stop there.
    #[inline]
    fn choose<R: Rng + ?Sized>(&self, state: usize, node: &Node, rng: &mut R) -> Option<usize> {
        let groups = node.first_group..node.end_group;
        let chosen = match &self.weights {
            Weights::Small { total, block } => {
                pick(total[state].below(rng), node.accept, &block[groups])
            }
            Weights::Wide { total, block } => {
                pick(total[state].below(rng), node.accept, &block[groups])
            }
        };
        chosen.map(|offset| node.first_group + offset)
    }
}

/// The longest run from the forced state `start` whose group sizes multiply to at most
/// `u64::MAX`, its groups appended to `run_groups`.
fn run_from(start: usize, states: &[Node], groups: &[Group], run_groups: &mut Vec<u32>) -> Run {
    let first = run_groups.len();
    let mut product: u64 = 1;
    let mut state = start;
    while states[state].is_forced() {
        let group_index = states[state].first_group;
        let group = &groups[group_index];
        match product.checked_mul(group.pick.range) {
            Some(larger) => product = larger,
            None => break,
        }
        run_groups.push(group_index as u32);
        state = group.target;
    }
    Run {
        groups: first,
        steps: run_groups.len() - first,
        end: state,
        draw: Draw::new(product),
    }
}

/// Appends an ASCII byte to `out`.
#[inline]
fn push_ascii(out: &mut String, byte: u8) {
    // The mask shows the compiler that the byte is ASCII (it is: it comes from the code
    // alphabet), so that `push` takes its one-byte path; that halves the sampling time.
    out.push(char::from(byte & 0x7F));
}

/// Picks among stopping (if `accept`, weight one) and the blocks, given `r` drawn uniformly
/// below their total: `None` to stop, or the index of the block.
#[inline]
fn pick<W: Weight>(mut r: W, accept: bool, blocks: &[W]) -> Option<usize> {
    if accept {
        if r < W::ONE {
            return None;
        }
        r = r.minus(W::ONE);
    }
    let (_, before_last) = blocks.split_last()?;
    for (index, block) in before_last.iter().enumerate() {
        if r < *block {
            return Some(index);
        }
        r = r.minus(*block);
    }
    Some(before_last.len())
}

/// The arithmetic [`pick`] needs.
trait Weight: Copy + Ord {
    const ONE: Self;
    /// `self - rhs`, with `rhs <= self`.
    fn minus(self, rhs: Self) -> Self;
}

impl Weight for u64 {
    const ONE: u64 = 1;
    #[inline]
    fn minus(self, rhs: u64) -> u64 {
        self - rhs
    }
}

/// The number of 64-bit words of a [`Wide`]: 38^64 (and the count of all codes of up to 64
/// characters, below 38^64 · 38/37) needs 337 bits.
const WIDE_WORDS: usize = 6;

/// A fixed-width unsigned integer of 384 bits, little-endian words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wide([u64; WIDE_WORDS]);

impl Wide {
    fn from_big(n: &BigUint) -> Wide {
        debug_assert!(n.bits() <= 64 * WIDE_WORDS as u64);
        let mut words = [0; WIDE_WORDS];
        for (word, digit) in words.iter_mut().zip(n.iter_u64_digits()) {
            *word = digit;
        }
        Wide(words)
    }

    /// A uniform draw in `0..self` (`self` is not zero): random words below the next power
    /// of two, rejected until below `self` (fewer than two tries on average).
    fn below<R: Rng + ?Sized>(&self, rng: &mut R) -> Wide {
        let top = self.0.iter().rposition(|&word| word != 0).unwrap_or(0);
        let mask = u64::MAX >> self.0[top].leading_zeros();
        loop {
            let mut words = [0; WIDE_WORDS];
            for word in &mut words[..top] {
                *word = rng.next_u64();
            }
            words[top] = rng.next_u64() & mask;
            let draw = Wide(words);
            if draw < *self {
                return draw;
            }
        }
    }
}

impl Ord for Wide {
    fn cmp(&self, other: &Wide) -> Ordering {
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}

impl PartialOrd for Wide {
    fn partial_cmp(&self, other: &Wide) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Weight for Wide {
    const ONE: Wide = {
        let mut words = [0; WIDE_WORDS];
        words[0] = 1;
        Wide(words)
    };

    #[inline]
    fn minus(self, rhs: Wide) -> Wide {
        let mut words = [0; WIDE_WORDS];
        let mut borrow = false;
        for ((out, a), b) in words.iter_mut().zip(self.0).zip(rhs.0) {
            let (difference, under) = a.overflowing_sub(b);
            let (difference, under_again) = difference.overflowing_sub(u64::from(borrow));
            *out = difference;
            borrow = under || under_again;
        }
        Wide(words)
    }
}

/// Draws codes of a pattern uniformly at random: each of its `size` distinct strings with
/// probability `1 / size`, exactly.
///
/// Get one with [`Pattern::sampler`](super::Pattern::sampler); it borrows tables the pattern
/// computed when it was parsed, so it is free to create, `Copy`, and shareable between
/// threads (each with its own random generator).
#[derive(Clone, Copy)]
pub struct Sampler<'p> {
    tables: &'p Tables,
}

impl<'p> Sampler<'p> {
    pub(super) fn new(tables: &'p Tables) -> Sampler<'p> {
        Sampler { tables }
    }

    /// Draws one code.
    ///
    /// ```
    /// use coupon_core::pattern::Pattern;
    /// use rand::SeedableRng;
    ///
    /// let pattern = Pattern::parse("(GOLD|SILVER)-[0-9]{4}")?;
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    /// let code = pattern.sampler().sample(&mut rng);
    /// assert!(pattern.contains(&code));
    /// # Ok::<(), coupon_core::Error>(())
    /// ```
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> String {
        let mut code = String::with_capacity(self.tables.max_len);
        self.sample_into(rng, &mut code);
        code
    }

    /// Clears `out` and writes one code into it; no allocation when `out` has the capacity
    /// of the pattern's longest code.
    ///
    /// ```
    /// use coupon_core::pattern::Pattern;
    /// use rand::SeedableRng;
    ///
    /// let pattern = Pattern::parse("[A-Z0-9]{12}")?;
    /// let sampler = pattern.sampler();
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    /// let mut code = String::with_capacity(pattern.max_len());
    /// for _ in 0..3 {
    ///     sampler.sample_into(&mut rng, &mut code);
    ///     assert_eq!(code.len(), 12);
    /// }
    /// # Ok::<(), coupon_core::Error>(())
    /// ```
    pub fn sample_into<R: Rng + ?Sized>(&self, rng: &mut R, out: &mut String) {
        out.clear();
        self.extend_from(self.tables.start, rng, out);
    }

    /// Appends to `out` a walk from `state` to a stop: one of the strings `state` leads to,
    /// each with probability one over their number.
    pub(super) fn extend_from<R: Rng + ?Sized>(&self, state: usize, rng: &mut R, out: &mut String) {
        let tables = self.tables;
        let mut state = state;
        loop {
            let node = &tables.states[state];
            match node.step {
                Step::Stop => return,
                Step::Run(run) => {
                    let mut fraction = run.draw.fraction(rng);
                    for &group in &tables.run_groups[run.groups..run.groups + run.steps] {
                        let group = &tables.groups[group as usize];
                        let (index, rest) = widening_mul(fraction, group.pick.range);
                        fraction = rest;
                        push_ascii(out, group.chars[index as usize]);
                    }
                    state = run.end;
                }
                Step::Choose => {
                    let Some(group) = tables.choose(state, node, rng) else {
                        return;
                    };
                    let group = &tables.groups[group];
                    push_ascii(out, group.chars[group.pick.below(rng) as usize]);
                    state = group.target;
                }
            }
        }
    }
}

impl fmt::Debug for Sampler<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sampler")
            .field("states", &self.tables.states.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_traits::One;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn wide(n: u128) -> Wide {
        Wide::from_big(&BigUint::from(n))
    }

    #[test]
    fn wide_arithmetic_matches_u128() {
        let cases = [
            (0u128, 0u128),
            (1, 0),
            (1 << 64, 1),
            (u128::MAX, u128::MAX >> 3),
        ];
        for (a, b) in cases {
            assert_eq!(wide(a).minus(wide(b)), wide(a - b));
            assert_eq!(wide(a).cmp(&wide(b)), a.cmp(&b));
            assert_eq!(wide(b).cmp(&wide(a)), b.cmp(&a));
        }
        let big = (BigUint::one() << 300u32) + 5u32;
        assert!(Wide::from_big(&big) > wide(u128::MAX));
    }

    #[test]
    fn wide_draws_stay_below_the_bound() {
        let mut rng = StdRng::seed_from_u64(1);
        let bound = wide((1 << 70) + 3);
        let mut seen_high = false;
        for _ in 0..200 {
            let draw = bound.below(&mut rng);
            assert!(draw < bound);
            seen_high |= draw.0[1] != 0;
        }
        assert!(seen_high);
        let three = wide(3);
        let mut counts = [0; 3];
        for _ in 0..3000 {
            counts[three.below(&mut rng).0[0] as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn pick_follows_the_weights() {
        let blocks = [2u64, 3, 1];
        let picks: Vec<_> = (0..7).map(|r| pick(r, true, &blocks)).collect();
        assert_eq!(
            picks,
            [None, Some(0), Some(0), Some(1), Some(1), Some(1), Some(2)]
        );
        assert_eq!(pick(0u64, false, &blocks), Some(0));
        assert_eq!(pick(5u64, false, &blocks), Some(2));
    }
}
