//! Code patterns: the finite languages coupon codes are drawn from.
//!
//! A pattern is written in a subset of regular-expression syntax whose language is finite
//! and made of valid coupon codes: strings of 1 to [`MAX_CODE_LEN`] characters from
//! [`CODE_ALPHABET`]. Allowed are literals, character classes (`[A-Z0-9]`,
//! `[A-HJ-NP-Z2-9]`, `\d` for ASCII digits), groups, alternation (`(GOLD|SILVER)`) and
//! bounded repetition (`{8}`, `{4,6}`, `?`). Everything else is refused with an
//! [`ErrorKind::InvalidPattern`](crate::error::ErrorKind::InvalidPattern) error that says what is
//! wrong, where, and what would be right.
//!
//! A parsed [`Pattern`] knows exactly how many distinct codes it describes
//! ([`Pattern::size`], overlapping alternatives counted once), orders them
//! ([`Pattern::nth`], [`Pattern::rank`], [`Pattern::iter_from`]) and draws them uniformly
//! ([`Pattern::sampler`]).

mod automaton;
mod ordered;
mod sampler;
mod syntax;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use num_bigint::BigUint;

use crate::error::Result;
use automaton::{BuildError, Dfa};
pub use sampler::Sampler;

/// The characters codes are made of, in the order that sorts codes: `-`, digits, upper-case
/// letters, `_` (which is also ASCII order).
pub const CODE_ALPHABET: &str = "-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_";

pub use crate::input::MAX_CODE_LEN;

/// The number of characters in [`CODE_ALPHABET`].
const SYMBOLS: usize = CODE_ALPHABET.len();

/// A set of symbols (indices into [`CODE_ALPHABET`]) as a bit mask.
type SymbolSet = u64;

/// The symbol of each ASCII character, [`NO_SYMBOL`] for those outside the alphabet.
const SYMBOL_OF: [u8; 128] = {
    let mut table = [NO_SYMBOL; 128];
    let alphabet = CODE_ALPHABET.as_bytes();
    let mut symbol = 0;
    while symbol < alphabet.len() {
        table[alphabet[symbol] as usize] = symbol as u8;
        symbol += 1;
    }
    table
};

/// Marks a character outside the alphabet in [`SYMBOL_OF`].
const NO_SYMBOL: u8 = u8::MAX;

/// The index of `c` in [`CODE_ALPHABET`].
fn symbol_of(c: char) -> Option<usize> {
    let symbol = *SYMBOL_OF.get(c as usize)?;
    (symbol != NO_SYMBOL).then_some(usize::from(symbol))
}

/// The character of a symbol, as an ASCII byte.
fn symbol_char(symbol: usize) -> u8 {
    CODE_ALPHABET.as_bytes()[symbol]
}

/// A parsed, validated code pattern: an immutable finite set of codes.
///
/// Cloning is cheap (the automaton is shared), and a pattern can be shared between threads.
/// The codes are ordered lexicographically by [`CODE_ALPHABET`] (a code comes before its
/// extensions), which is the order of [`Pattern::nth`], [`Pattern::rank`] and
/// [`Pattern::iter_from`], and also the order of Rust's `str` comparison.
#[derive(Clone)]
pub struct Pattern {
    inner: Arc<Inner>,
}

struct Inner {
    source: String,
    dfa: Dfa,
    tables: sampler::Tables,
}

impl Pattern {
    /// Parses and validates a pattern.
    ///
    /// # Errors
    ///
    /// An [`ErrorKind::InvalidPattern`](crate::error::ErrorKind::InvalidPattern) error, whose
    /// message names the problem, its 1-based character position and a fix, when `source`
    /// is empty or longer than 1000 characters, is not valid syntax, uses unbounded
    /// repetition, anchors, look-around, back-references, flags or Unicode classes, allows a
    /// character outside [`CODE_ALPHABET`], can match the empty string or a string longer
    /// than [`MAX_CODE_LEN`], or needs too large an automaton (more than 100,000 states).
    ///
    /// ```
    /// use coupon_core::{pattern::Pattern, ErrorKind};
    ///
    /// let pattern = Pattern::parse("(GOLD|SILVER)-[0-9]{4}")?;
    /// assert!(pattern.contains("GOLD-0042"));
    /// assert_eq!((pattern.min_len(), pattern.max_len()), (9, 11));
    ///
    /// let err = Pattern::parse("AB*").unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::InvalidPattern);
    /// assert_eq!(
    ///     err.message(),
    ///     "invalid pattern \"AB*\": unbounded repetition '*' at position 3; \
    ///      use a bounded count like {1,8}"
    /// );
    /// # Ok::<(), coupon_core::Error>(())
    /// ```
    pub fn parse(source: &str) -> Result<Pattern> {
        let hir = syntax::parse(source)?;
        let dfa = Dfa::build(&hir).map_err(|err| {
            syntax::refusal(
                source,
                match err {
                    BuildError::TooComplex => format!(
                        "it is too complex: its automaton would need more than {} states; \
                         simplify overlapping alternatives and optional parts",
                        automaton::MAX_DFA_STATES
                    ),
                    BuildError::Unsupported(what) => format!("{what} is not supported"),
                },
            )
        })?;
        let tables = sampler::Tables::new(&dfa);
        Ok(Pattern {
            inner: Arc::new(Inner {
                source: source.to_owned(),
                dfa,
                tables,
            }),
        })
    }

    /// The source of the pattern, as given to [`Pattern::parse`].
    pub fn as_str(&self) -> &str {
        &self.inner.source
    }

    /// The exact number of distinct codes the pattern describes.
    ///
    /// ```
    /// use coupon_core::pattern::Pattern;
    /// use num_bigint::BigUint;
    ///
    /// let size = |source: &str| Pattern::parse(source).map(|p| p.size().clone());
    /// assert_eq!(size("(GOLD|SILVER)-[0-9]{4}")?, BigUint::from(20_000u32));
    /// // Overlapping alternatives count once: "AC", "ABC" and "ABBC".
    /// assert_eq!(size("(A|AB)(C|BC)")?, BigUint::from(3u32));
    /// assert_eq!(size("[A-Z0-9]{40}")?, BigUint::from(36u32).pow(40));
    /// # Ok::<(), coupon_core::Error>(())
    /// ```
    pub fn size(&self) -> &BigUint {
        self.inner.dfa.size()
    }

    /// The length of the shortest code.
    pub fn min_len(&self) -> usize {
        self.inner.dfa.min_len()
    }

    /// The length of the longest code.
    pub fn max_len(&self) -> usize {
        self.inner.dfa.max_len()
    }

    /// Whether `code` is one of the pattern's codes.
    pub fn contains(&self, code: &str) -> bool {
        self.inner.dfa.contains(code)
    }

    /// The code at `index` in the pattern's order, `None` if `index >= size`.
    ///
    /// ```
    /// use coupon_core::pattern::Pattern;
    /// use num_bigint::BigUint;
    ///
    /// let pattern = Pattern::parse("X[0-9]?")?;
    /// assert_eq!(pattern.nth(&BigUint::from(0u32)).as_deref(), Some("X"));
    /// assert_eq!(pattern.nth(&BigUint::from(1u32)).as_deref(), Some("X0"));
    /// assert_eq!(pattern.rank("X9"), Some(BigUint::from(10u32)));
    /// assert_eq!(pattern.nth(&BigUint::from(11u32)), None);
    /// # Ok::<(), coupon_core::Error>(())
    /// ```
    pub fn nth(&self, index: &BigUint) -> Option<String> {
        self.inner.dfa.cursor(index).next()
    }

    /// The index of `code` in the pattern's order, `None` if it is not a code of the
    /// pattern; the inverse of [`Pattern::nth`].
    pub fn rank(&self, code: &str) -> Option<BigUint> {
        self.inner.dfa.rank(code)
    }

    /// Every code from `index` on, in the pattern's order (none if `index >= size`).
    ///
    /// Only the first code is unranked; each further one costs constant time.
    ///
    /// ```
    /// use coupon_core::pattern::Pattern;
    /// use num_bigint::BigUint;
    ///
    /// let pattern = Pattern::parse("(A|B)[0-9]")?;
    /// let codes: Vec<String> = pattern.iter_from(&BigUint::from(8u32)).take(3).collect();
    /// assert_eq!(codes, ["A8", "A9", "B0"]);
    /// # Ok::<(), coupon_core::Error>(())
    /// ```
    pub fn iter_from(&self, index: &BigUint) -> impl Iterator<Item = String> + '_ {
        self.inner.dfa.cursor(index)
    }

    /// A sampler drawing the pattern's codes uniformly at random.
    ///
    /// ```
    /// use coupon_core::pattern::Pattern;
    /// use rand::SeedableRng;
    ///
    /// let pattern = Pattern::parse("[A-HJ-NP-Z2-9]{8}")?;
    /// let sampler = pattern.sampler();
    /// // Use `StdRng::from_os_rng()` for real codes; a seed makes the example repeatable.
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    /// let code = sampler.sample(&mut rng);
    /// assert_eq!(code.len(), 8);
    /// assert!(pattern.contains(&code));
    /// # Ok::<(), coupon_core::Error>(())
    /// ```
    pub fn sampler(&self) -> Sampler<'_> {
        Sampler::new(&self.inner.tables)
    }
}

impl FromStr for Pattern {
    type Err = crate::error::Error;

    fn from_str(source: &str) -> Result<Pattern> {
        Pattern::parse(source)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pattern")
            .field("source", &self.as_str())
            .field("size", self.size())
            .field("len", &(self.min_len()..=self.max_len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;
    use num_traits::{One, ToPrimitive, Zero};
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::{BTreeSet, HashMap, HashSet};

    fn parse(source: &str) -> Pattern {
        Pattern::parse(source).unwrap_or_else(|err| panic!("{source:?} is refused: {err}"))
    }

    fn size(source: &str) -> BigUint {
        parse(source).size().clone()
    }

    fn pow(base: u32, exp: u32) -> BigUint {
        BigUint::from(base).pow(exp)
    }

    /// The refusal message of `source`, checking the kind.
    fn refusal(source: &str) -> String {
        match Pattern::parse(source) {
            Ok(pattern) => panic!("{source:?} is accepted: {pattern:?}"),
            Err(err) => {
                assert_eq!(err.kind(), ErrorKind::InvalidPattern, "{err}");
                err.message().to_owned()
            }
        }
    }

    /// The regex crate's view of a pattern, anchored.
    fn regex(source: &str) -> regex::Regex {
        regex::Regex::new(&format!("^(?:{source})$")).expect("the regex crate accepts it")
    }

    #[test]
    fn sizes_are_exact() {
        assert_eq!(size("[A-Z0-9]{12}"), pow(36, 12));
        assert_eq!(size("[A-Z0-9]{40}"), pow(36, 40));
        assert_eq!(size("[A-HJ-NP-Z2-9]{8}"), pow(32, 8));
        assert_eq!(size("(GOLD|SILVER)-[0-9]{4}"), BigUint::from(20_000u32));
        assert_eq!(size("A{4,6}"), BigUint::from(3u32));
        assert_eq!(size("\\d{6}"), pow(10, 6));
        assert_eq!(size("X[0-9]?"), BigUint::from(11u32));
        assert_eq!(size("[-_]"), BigUint::from(2u32));
        assert_eq!(size("[-0-9A-Z_]{1,64}"), (1..=64).map(|n| pow(38, n)).sum());
    }

    #[test]
    fn overlapping_alternatives_count_once() {
        assert_eq!(size("([0-9]|[0-4]){2}"), BigUint::from(100u32));
        assert_eq!(size("(A|AB)(C|BC)"), BigUint::from(3u32));
        assert_eq!(size("(A|AA){2}"), BigUint::from(3u32));
        assert_eq!(size("(A|A|A)"), BigUint::one());
        assert_eq!(size("([A-Z]{2}|A[A-Z])"), pow(26, 2));
        let all: Vec<String> = parse("(A|AB)(C|BC)").iter_from(&BigUint::zero()).collect();
        assert_eq!(all, ["ABBC", "ABC", "AC"]);
    }

    #[test]
    fn lengths_membership_and_display() {
        let pattern = parse("(GOLD|SILVER)-[0-9]{4}");
        assert_eq!((pattern.min_len(), pattern.max_len()), (9, 11));
        assert!(pattern.contains("SILVER-0000"));
        for code in [
            "GOLD-000",
            "GOLD-00000",
            "gold-0000",
            "",
            "BRONZE-0000",
            "GOLD-000é",
        ] {
            assert!(!pattern.contains(code), "{code}");
        }
        assert_eq!(pattern.to_string(), "(GOLD|SILVER)-[0-9]{4}");
        assert_eq!(pattern.as_str(), "(GOLD|SILVER)-[0-9]{4}");
        let from_str: Pattern = "X[0-9]?".parse().expect("valid");
        assert_eq!(from_str.size(), &BigUint::from(11u32));
        assert!(format!("{from_str:?}").contains("size: 11"));
        assert!("AB*".parse::<Pattern>().is_err());
    }

    #[test]
    fn a_pattern_is_shareable() {
        fn shareable<T: Send + Sync + Clone>() {}
        shareable::<Pattern>();
        fn sendable<T: Send + Sync + Copy>() {}
        sendable::<Sampler<'static>>();
    }

    #[test]
    fn order_is_lexicographic_with_prefixes_first() {
        let pattern = parse("X[0-9]?");
        let all: Vec<String> = pattern.iter_from(&BigUint::zero()).collect();
        assert_eq!(all[..3], ["X", "X0", "X1"]);
        assert_eq!(all.len(), 11);
        let from_nine: Vec<String> = pattern.iter_from(&BigUint::from(9u32)).collect();
        assert_eq!(from_nine, ["X8", "X9"]);
        assert_eq!(pattern.iter_from(&BigUint::from(11u32)).count(), 0);
        assert_eq!(pattern.nth(&BigUint::from(11u32)), None);
        assert_eq!(pattern.rank("X10"), None);
        assert_eq!(pattern.rank("Y"), None);

        let big = parse("[A-Z0-9]{40}");
        let last = &pow(36, 40) - 1u32;
        assert_eq!(big.nth(&last), Some("Z".repeat(40)));
        assert_eq!(big.nth(&BigUint::zero()), Some("0".repeat(40)));
        assert_eq!(
            big.nth(&BigUint::from(10u32)),
            Some(format!("{}A", "0".repeat(39)))
        );
        assert_eq!(big.rank(&"Z".repeat(40)), Some(last.clone()));
        assert_eq!(big.iter_from(&(&last - 1u32)).count(), 2);
        assert_eq!(big.nth(&pow(36, 40)), None);
    }

    #[test]
    fn iteration_matches_nth() {
        let pattern = parse("(A|B[0-9]{0,2}|C)-?[XY]");
        let size = pattern.size().to_usize().expect("small");
        let all: Vec<String> = pattern.iter_from(&BigUint::zero()).collect();
        assert_eq!(all.len(), size);
        for (index, code) in all.iter().enumerate() {
            assert_eq!(pattern.nth(&BigUint::from(index)).as_ref(), Some(code));
        }
        assert!(all.windows(2).all(|pair| pair[0] < pair[1]));
    }

    fn assert_refused(source: &str, parts: &[&str]) {
        let message = refusal(source);
        assert!(
            message.starts_with("invalid pattern \""),
            "{source:?}: {message}"
        );
        for part in parts {
            assert!(
                message.contains(part),
                "{source:?}: {message:?} lacks {part:?}"
            );
        }
    }

    #[test]
    fn refusals_say_what_and_where() {
        assert_refused("AB*", &["unbounded repetition '*' at position 3", "{1,8}"]);
        assert_refused("AB+", &["unbounded repetition '+' at position 3"]);
        assert_refused("A[0-9]{3,}", &["'{3,}' at position 7", "{3,10}"]);
        assert_refused("^AB", &["anchor '^' at position 1", "remove it"]);
        assert_refused("AB$", &["anchor '$' at position 3"]);
        assert_refused("\\AAB", &["anchor '\\A' at position 1"]);
        assert_refused("A\\bB", &["word boundary '\\b' at position 2"]);
        assert_refused("A(?=B)", &["look-around", "position 2"]);
        assert_refused("(A)\\1", &["backreferences", "position 4"]);
        assert_refused("ABc", &["lower-case letter 'c'", "position 3", "write 'C'"]);
        assert_refused("AB.", &["'.'", "position 3", "[A-Z0-9]"]);
        assert_refused("A\\w", &["'\\w'", "position 2", "[A-Z0-9_]"]);
        assert_refused("A\\s", &["'\\s'", "position 2", "whitespace"]);
        assert_refused("A\\D", &["'\\D'", "position 2"]);
        assert_refused("A B", &["a space", "position 2"]);
        assert_refused("AB\\.", &["character '.'", "position 3"]);
        assert_refused("é[A-Z]", &["character 'é'", "position 1"]);
        assert_refused(
            "A[a-z]{2}",
            &["class '[a-z]'", "position 2", "'a'", "upper-case"],
        );
        assert_refused("A[^A-Z]", &["class '[^A-Z]'", "position 2", "outside"]);
        assert_refused("[A-Zé]", &["character 'é'", "position 5"]);
        assert_refused("[0-Z]", &["class '[0-Z]'", "':'"]);
        assert_refused(
            "A[A&&B]",
            &["class '[A&&B]' at position 2 matches no character"],
        );
        assert_refused("(?i)AB", &["flags '(?i)' at position 1"]);
        assert_refused("A(?i:B)", &["flags 'i' at position 4"]);
        assert_refused("A\\p{L}", &["Unicode class '\\p{L}' at position 2"]);
        assert_refused("[\\pL]", &["Unicode class '\\pL' at position 2"]);
        assert_refused("A?", &["empty code", "'?' at position 2", "mandatory"]);
        assert_refused("(|A)", &["empty code", "empty alternative at position 2"]);
        assert_refused("()", &["empty code", "empty group '()' at position 1"]);
        assert_refused("A{0}", &["empty code", "'{0}' at position 2"]);
        assert_refused(
            "[A-Z]{65}",
            &["up to 65 characters", "'[A-Z]{65}' at position 1"],
        );
        assert_refused(
            "[A-Z]{40}[0-9]{30}",
            &["up to 70 characters", "'[0-9]{30}' at position 10"],
        );
        assert_refused("(A{10}){10}", &["up to 100", "'(A{10}){10}' at position 1"]);
        assert_refused("", &["empty"]);
        assert_refused(&"A".repeat(1001), &["1001 characters", "1000"]);
        assert_refused("(AB", &["unclosed group", "position 1"]);
        assert_refused("A{5,3}", &["position"]);
        assert_refused("[AB]{0,40}A[AB]{17}", &["too complex"]);
    }

    #[test]
    fn long_sources_are_quoted_shortened() {
        let source = format!("{}a", "A".repeat(70));
        let message = refusal(&source);
        assert!(message.contains("position 71"), "{message}");
        assert!(message.contains('…'), "{message}");
        assert!(message.len() < 200, "{message}");
        let message = refusal("AB\n");
        assert!(message.contains("AB\\n"), "{message}");
    }

    #[test]
    fn empty_parts_that_match_nothing_longer_are_harmless() {
        assert_eq!(size("A(){4000000000}"), BigUint::one());
        assert_eq!(size("A(|){1000}B"), BigUint::one());
        assert_eq!(size("A(?:B{0}){9}C"), BigUint::one());
    }

    #[test]
    fn samples_of_huge_spaces_are_valid() {
        let mut rng = StdRng::seed_from_u64(3);
        for source in [
            "[-0-9A-Z_]{1,64}",
            "(A|[0-9]{2})[A-Z0-9]{30}(-[A-Z]{20})?",
            "[A-Z0-9]{40}",
        ] {
            let pattern = parse(source);
            let sampler = pattern.sampler();
            let mut code = String::new();
            for _ in 0..200 {
                sampler.sample_into(&mut rng, &mut code);
                assert!(pattern.contains(&code), "{source}: {code}");
                let rank = pattern.rank(&code).expect("a member has a rank");
                assert_eq!(pattern.nth(&rank).as_ref(), Some(&code));
            }
        }
        // Nearly all codes of up to 64 characters have the full length.
        let pattern = parse("[-0-9A-Z_]{1,64}");
        let long = (0..100)
            .filter(|_| pattern.sampler().sample(&mut rng).len() >= 63)
            .count();
        assert!(long > 95);
    }

    #[test]
    fn sample_into_reuses_the_buffer() {
        let pattern = parse("[A-Z0-9]{12}");
        let mut rng = StdRng::seed_from_u64(9);
        let mut code = String::with_capacity(12);
        let buffer = code.as_ptr();
        for _ in 0..100 {
            pattern.sampler().sample_into(&mut rng, &mut code);
            assert_eq!(code.len(), 12);
        }
        assert_eq!(code.as_ptr(), buffer);
    }

    /// The chi-square statistic of `counts` against a uniform distribution.
    fn chi_square(counts: &HashMap<String, u64>, size: usize, draws: u64) -> f64 {
        let expected = draws as f64 / size as f64;
        let missing = size - counts.len();
        counts
            .values()
            .map(|&count| (count as f64 - expected).powi(2) / expected)
            .sum::<f64>()
            + missing as f64 * expected
    }

    /// The chi-square value exceeded with probability about 1e-6 with `df` degrees of freedom
    /// (Wilson–Hilferty approximation).
    fn critical(df: f64) -> f64 {
        let z = 4.753;
        let h = 2.0 / (9.0 * df);
        df * (1.0 - h + z * h.sqrt()).powi(3)
    }

    #[test]
    fn sampling_is_uniform() {
        let mut rng = StdRng::seed_from_u64(2024);
        for source in [
            "([0-9]|[0-4])[A-C]",
            "(A|AB)(C|BC)",
            "[0-9]{2}",
            "[A-C][0-9]-[0-4]",
            "(A[0-9]|[BC][0-4])",
            "(X|X[0-9]|Y[0-9]{2})",
        ] {
            let pattern = parse(source);
            let size = pattern.size().to_usize().expect("small");
            let draws = 500 * size as u64;
            let mut counts: HashMap<String, u64> = HashMap::new();
            let sampler = pattern.sampler();
            for _ in 0..draws {
                *counts.entry(sampler.sample(&mut rng)).or_default() += 1;
            }
            assert!(counts.keys().all(|code| pattern.contains(code)));
            let statistic = chi_square(&counts, size, draws);
            let limit = critical((size - 1) as f64);
            assert!(
                statistic < limit,
                "{source}: chi-square {statistic} >= {limit}"
            );
        }
    }

    #[test]
    fn sampling_is_uniform_beyond_64_bits() {
        // 11 · 36^25 codes, so the weights need more than 64 bits; the prefixes "A", "B0"
        // … "B9" must each come out with probability 1/11.
        let pattern = parse("(A|B[0-9])[A-Z0-9]{25}");
        assert!(pattern.size().to_u64().is_none());
        let mut rng = StdRng::seed_from_u64(11);
        let draws = 11 * 500;
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut code = String::new();
        for _ in 0..draws {
            pattern.sampler().sample_into(&mut rng, &mut code);
            let prefix = if code.starts_with('A') {
                &code[..1]
            } else {
                &code[..2]
            };
            *counts.entry(prefix.to_owned()).or_default() += 1;
        }
        assert_eq!(counts.len(), 11);
        assert!(chi_square(&counts, 11, draws) < critical(10.0));
    }

    #[test]
    fn the_uniformity_test_catches_a_biased_sampler() {
        // Choosing the branches of ([0-9]|[0-4]) half and half, as a naive sampler would.
        let mut rng = StdRng::seed_from_u64(2024);
        let draws = 500 * 50;
        let mut counts: HashMap<String, u64> = HashMap::new();
        for _ in 0..draws {
            let digit = if rng.random_bool(0.5) {
                rng.random_range(0..10)
            } else {
                rng.random_range(0..5)
            };
            let letter = ['A', 'B', 'C', 'D', 'E'][rng.random_range(0..5)];
            *counts.entry(format!("{digit}{letter}")).or_default() += 1;
        }
        assert!(chi_square(&counts, 50, draws) > critical(49.0));
    }

    /// Small patterns over the symbols `A`, `B`, `0` and `-`.
    fn small_pattern() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("A".to_owned()),
            Just("B".to_owned()),
            Just("0".to_owned()),
            Just("\\-".to_owned()),
            Just("[AB]".to_owned()),
            Just("[A0]".to_owned()),
            Just("[0-]".to_owned()),
            Just("[A-B0]".to_owned()),
        ];
        leaf.prop_recursive(3, 10, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 2..=3).prop_map(|parts| parts.concat()),
                prop::collection::vec(inner.clone(), 2..=3)
                    .prop_map(|branches| format!("({})", branches.join("|"))),
                (
                    inner.clone(),
                    prop::sample::select(vec!["?", "{2}", "{0,2}", "{1,2}", "{1,3}"])
                )
                    .prop_map(|(part, count)| format!("(?:{part}){count}")),
                inner.prop_map(|part| format!("(|{part})")),
            ]
        })
    }

    /// Every string over `A`, `B`, `0`, `-` of length 0 to `max_len`.
    fn all_strings(max_len: usize) -> Vec<String> {
        let mut all = vec![String::new()];
        let mut layer = vec![String::new()];
        for _ in 0..max_len {
            layer = layer
                .iter()
                .flat_map(|prefix| ["A", "B", "0", "-"].map(|c| format!("{prefix}{c}")))
                .collect();
            all.extend(layer.iter().cloned());
        }
        all
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn size_and_enumeration_match_brute_force(source in small_pattern()) {
            let reference = regex(&source);
            let pattern = match Pattern::parse(&source) {
                Ok(pattern) => pattern,
                Err(err) => {
                    prop_assert_eq!(err.kind(), ErrorKind::InvalidPattern);
                    // The only refusal these patterns can meet is matching the empty code.
                    prop_assert!(reference.is_match(""), "{}: {}", source, err);
                    return Ok(());
                }
            };
            prop_assert!(!reference.is_match(""));
            prop_assume!(pattern.max_len() <= 6);
            let listed: Vec<String> = pattern.iter_from(&BigUint::zero()).collect();
            let distinct: BTreeSet<&String> = listed.iter().collect();
            prop_assert_eq!(distinct.len(), listed.len());
            prop_assert_eq!(&BigUint::from(listed.len()), pattern.size());
            prop_assert!(listed.windows(2).all(|pair| pair[0] < pair[1]));
            let matching: BTreeSet<String> = all_strings(pattern.max_len())
                .into_iter()
                .filter(|code| reference.is_match(code))
                .collect();
            prop_assert_eq!(matching.iter().collect::<BTreeSet<_>>(), distinct);
            prop_assert_eq!(pattern.min_len(), listed.iter().map(String::len).min().unwrap_or(0));
            prop_assert_eq!(pattern.max_len(), listed.iter().map(String::len).max().unwrap_or(0));
            for (index, code) in listed.iter().enumerate() {
                prop_assert!(pattern.contains(code));
                prop_assert_eq!(pattern.rank(code), Some(BigUint::from(index)));
                let nth = pattern.nth(&BigUint::from(index));
                prop_assert_eq!(nth.as_ref(), Some(code));
            }
        }

        #[test]
        fn samples_match_and_rank_round_trips(source in small_pattern(), seed: u64) {
            let Ok(pattern) = Pattern::parse(&source) else { return Ok(()) };
            let reference = regex(&source);
            let mut rng = StdRng::seed_from_u64(seed);
            let sampler = pattern.sampler();
            for _ in 0..20 {
                let code = sampler.sample(&mut rng);
                prop_assert!(reference.is_match(&code), "{} does not match {}", code, source);
                let rank = pattern.rank(&code);
                prop_assert!(rank.as_ref().is_some_and(|rank| rank < pattern.size()));
                prop_assert_eq!(pattern.nth(&rank.unwrap_or_default()), Some(code));
            }
        }

        #[test]
        fn nth_and_rank_are_inverse_on_large_patterns(
            source in prop::sample::select(vec![
                "[A-Z0-9]{12}",
                "(A|AB)(C|BC)[0-9]{20}",
                "(GOLD|SILVER|G[A-Z]{3})-[0-9]{4}(-[A-Z]{2})?",
                "[A-HJ-NP-Z2-9]{8}([0-9]|[0-4]){10}",
                "[-0-9A-Z_]{1,64}",
            ]),
            fraction in 0.0f64..1.0,
            seed: u64,
        ) {
            let pattern = parse(source);
            let reference = regex(source);
            let index = pattern.size() * BigUint::from((fraction * 1e9) as u64)
                / BigUint::from(1_000_000_000u64);
            let code = pattern.nth(&index).expect("index below size");
            prop_assert!(reference.is_match(&code));
            prop_assert_eq!(pattern.rank(&code), Some(index.clone()));
            let next: Vec<String> = pattern.iter_from(&index).take(3).collect();
            prop_assert_eq!(&next[0], &code);
            for (offset, later) in next.iter().enumerate() {
                prop_assert_eq!(pattern.rank(later), Some(&index + offset));
            }
            let sampled = pattern.sampler().sample(&mut StdRng::seed_from_u64(seed));
            prop_assert!(reference.is_match(&sampled));
        }

        #[test]
        fn contains_agrees_with_regex(source in small_pattern(), code in "[AB0-]{0,7}") {
            if let Ok(pattern) = Pattern::parse(&source) {
                prop_assert_eq!(pattern.contains(&code), regex(&source).is_match(&code));
            }
        }

        #[test]
        fn parse_never_panics_on_any_string(source in ".{0,40}") {
            if let Err(err) = Pattern::parse(&source) {
                prop_assert_eq!(err.kind(), ErrorKind::InvalidPattern);
            }
        }

        #[test]
        fn parse_never_panics_on_metacharacters(
            source in "[\\[\\](){}|?*+.^$\\\\AZaz09,:=!<>&~ pPdDwWbBsSx-]{0,30}"
        ) {
            match Pattern::parse(&source) {
                Ok(pattern) => {
                    prop_assert!(pattern.min_len() >= 1 && pattern.max_len() <= MAX_CODE_LEN);
                    let code = pattern.sampler().sample(&mut StdRng::seed_from_u64(1));
                    prop_assert!(regex(&source).is_match(&code));
                }
                Err(err) => prop_assert_eq!(err.kind(), ErrorKind::InvalidPattern),
            }
        }
    }

    #[test]
    fn enumeration_of_a_whole_space_is_distinct() {
        let pattern = parse("([0-9]|[0-4]){2}[AB]?");
        let all: HashSet<String> = pattern.iter_from(&BigUint::zero()).collect();
        assert_eq!(BigUint::from(all.len()), *pattern.size());
        assert_eq!(all.len(), 300);
    }
}
