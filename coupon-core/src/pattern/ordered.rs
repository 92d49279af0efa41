//! Drawing many codes at once, in ascending order.
//!
//! `m` independent uniform draws among the strings a DFA state leads to split among the
//! state's children — stopping there (if it accepts), then each symbol in alphabet order — as
//! a multinomial: child by child, the number that falls in a child is binomial given what is
//! left, in proportion to the child's number of strings. Splitting recursively and visiting
//! children in order hands the draws out sorted. Once a share is small, its codes are drawn
//! directly with the sampler and sorted, so memory stays bounded by that share and the code
//! length, whatever the count.

use num_bigint::BigUint;
use num_traits::{ToPrimitive, Zero};
use rand::Rng;
use rand_distr::{Binomial, Distribution};

use super::{symbol_char, Pattern, SYMBOLS};

/// A share at most this large is drawn directly instead of being split further.
const LEAF: u64 = 2048;

impl Pattern {
    /// Makes `count` independent uniform draws among the pattern's codes and hands the
    /// distinct codes drawn to `sink` in ascending order, a few thousand at a time.
    ///
    /// Given how many distinct codes come out, every set of that many codes is equally likely
    /// (repeats are rare in a large space: about `count² / (2 × size)` of them). Memory stays
    /// bounded whatever `count` is, and stores insert codes that come in index order several
    /// times faster than codes in random order.
    ///
    /// # Errors
    /// The first error `sink` returns, which ends the drawing.
    ///
    /// ```
    /// use coupon_core::pattern::Pattern;
    /// use rand::SeedableRng;
    ///
    /// let pattern = Pattern::parse("[A-Z]{4}[0-9]{4}")?;
    /// // Use `StdRng::from_os_rng()` for real codes; a seed makes the example repeatable.
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    /// let mut codes = Vec::new();
    /// pattern.sample_sorted(5000, &mut rng, |chunk: &mut Vec<String>| {
    ///     codes.append(chunk);
    ///     Ok::<(), std::convert::Infallible>(())
    /// })?;
    /// assert!(codes.len() > 4990); // 5000 minus the rare repeats
    /// assert!(codes.windows(2).all(|pair| pair[0] < pair[1]));
    /// assert!(codes.iter().all(|code| pattern.contains(code)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn sample_sorted<R, E, F>(&self, count: u64, rng: &mut R, mut sink: F) -> Result<(), E>
    where
        R: Rng + ?Sized,
        F: FnMut(&mut Vec<String>) -> Result<(), E>,
    {
        self.sample_sorted_in(LEAF, count, rng, &mut sink)
    }

    /// [`Pattern::sample_sorted`] with shares of at most `leaf` drawn directly.
    fn sample_sorted_in<R, E, F>(
        &self,
        leaf: u64,
        count: u64,
        rng: &mut R,
        sink: &mut F,
    ) -> Result<(), E>
    where
        R: Rng + ?Sized,
        F: FnMut(&mut Vec<String>) -> Result<(), E>,
    {
        let mut walk = Walk {
            pattern: self,
            leaf: leaf.max(1),
            rng,
            sink,
            prefix: String::with_capacity(self.max_len()),
            chunk: Vec::new(),
        };
        walk.split(self.inner.dfa.start() as usize, count)
    }
}

/// One [`Pattern::sample_sorted`] in progress.
struct Walk<'a, R: ?Sized, F> {
    pattern: &'a Pattern,
    leaf: u64,
    rng: &'a mut R,
    sink: &'a mut F,
    /// The symbols from the start to the state being split.
    prefix: String,
    chunk: Vec<String>,
}

impl<R, E, F> Walk<'_, R, F>
where
    R: Rng + ?Sized,
    F: FnMut(&mut Vec<String>) -> Result<(), E>,
{
    /// Hands out, in order, the distinct codes of `m` draws among those `state` leads to
    /// (after the prefix).
    fn split(&mut self, state: usize, m: u64) -> Result<(), E> {
        if m == 0 {
            return Ok(());
        }
        if m <= self.leaf {
            return self.leaf(state, m);
        }
        let dfa = &self.pattern.inner.dfa;
        let node = &dfa.states()[state];
        let mut population = dfa.count(state as u32).clone();
        let mut left = m;
        if node.accept {
            // The prefix itself comes first: a code before its extensions.
            let here = share(&mut *self.rng, &population, &BigUint::from(1u8), left);
            if here > 0 {
                self.chunk.push(self.prefix.clone());
                self.flush()?;
            }
            population -= 1u8;
            left -= here;
        }
        for symbol in 0..SYMBOLS {
            if left == 0 {
                break;
            }
            let Some(edge) = node.edges.iter().find(|e| e.symbols & (1 << symbol) != 0) else {
                continue;
            };
            let child = dfa.count(edge.target);
            let taken = share(&mut *self.rng, &population, child, left);
            population -= child;
            left -= taken;
            self.prefix.push(char::from(symbol_char(symbol)));
            let done = self.split(edge.target as usize, taken);
            self.prefix.pop();
            done?;
        }
        Ok(())
    }

    /// Makes `m` draws among the codes `state` leads to and hands out the distinct ones.
    fn leaf(&mut self, state: usize, m: u64) -> Result<(), E> {
        let sampler = self.pattern.sampler();
        for _ in 0..m {
            let mut code = self.prefix.clone();
            sampler.extend_from(state, &mut *self.rng, &mut code);
            self.chunk.push(code);
        }
        self.chunk.sort_unstable();
        self.chunk.dedup();
        self.flush()
    }

    fn flush(&mut self) -> Result<(), E> {
        (self.sink)(&mut self.chunk)?;
        self.chunk.clear();
        Ok(())
    }
}

/// How many of `left` independent uniform draws among `population` strings fall among the
/// `part` of them (`part <= population`): binomial with probability `part / population`.
fn share<R: Rng + ?Sized>(rng: &mut R, population: &BigUint, part: &BigUint, left: u64) -> u64 {
    if part.is_zero() || left == 0 {
        return 0;
    }
    if part >= population {
        return left;
    }
    // Scale both to at most 64 significant bits, then divide as floats.
    let shift = population.bits().saturating_sub(64);
    let p = match ((part >> shift).to_f64(), (population >> shift).to_f64()) {
        (Some(part), Some(whole)) if whole > 0.0 => (part / whole).clamp(0.0, 1.0),
        _ => 0.0,
    };
    Binomial::new(left, p).map_or(0, |d| d.sample(rng))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn sorted(source: &str, count: u64, seed: u64) -> Vec<String> {
        sorted_in(LEAF, source, count, seed)
    }

    fn sorted_in(leaf: u64, source: &str, count: u64, seed: u64) -> Vec<String> {
        let pattern = Pattern::parse(source).unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        let mut codes = Vec::new();
        let mut sink = |chunk: &mut Vec<String>| {
            codes.append(chunk);
            Ok::<(), ()>(())
        };
        pattern
            .sample_sorted_in(leaf, count, &mut rng, &mut sink)
            .unwrap();
        codes
    }

    #[test]
    fn codes_are_distinct_in_order_and_of_the_pattern() {
        for (source, count, least) in [
            ("[A-Z0-9]{12}", 50_000, 50_000),
            ("[A-Z0-9]{30}", 5000, 5000),
            // Small spaces: repeats are merged.
            ("X[0-9]?[A-C]{0,4}", 100, 90),
            ("(GOLD|SILVER)-[0-9]{4}", 19_999, 12_000),
        ] {
            let pattern = Pattern::parse(source).unwrap();
            for leaf in [1, 16, LEAF] {
                let codes = sorted_in(leaf, source, count, 3);
                assert!((least..=count).contains(&(codes.len() as u64)), "{source}");
                assert!(codes.windows(2).all(|p| p[0] < p[1]), "{source}");
                assert!(codes.iter().all(|c| pattern.contains(c)), "{source}");
            }
        }
    }

    #[test]
    fn many_draws_of_a_tiny_space_give_every_code() {
        let codes = sorted("X[0-9]?", 1000, 1);
        assert_eq!(codes.len(), 11);
        assert_eq!((codes[0].as_str(), codes[10].as_str()), ("X", "X9"));
    }

    #[test]
    fn the_sink_error_stops_the_drawing() {
        let pattern = Pattern::parse("[A-Z]{6}").unwrap();
        let mut calls = 0;
        let result = pattern.sample_sorted(100_000, &mut StdRng::seed_from_u64(1), |_| {
            calls += 1;
            Err("full")
        });
        assert_eq!((result, calls), (Err("full"), 1));
    }

    /// Every code of a small space comes out equally often: after `count` draws a code is
    /// among those handed out with probability `q = 1 - (1 - 1/size)^count`, and the counts
    /// over many rounds pass a chi-square test. Tiny leaves make every share go through the
    /// split, accepting states (codes that are prefixes of others) included.
    #[test]
    fn every_code_is_equally_likely() {
        let source = "[0-9]{1,2}[A-C]?"; // (10 + 100) * 4 = 440 codes
        let size = 440u32;
        assert_eq!(Pattern::parse(source).unwrap().size().to_u32(), Some(size));
        let (rounds, count) = (400u32, 200u32);
        let q = 1.0 - (1.0 - 1.0 / f64::from(size)).powf(f64::from(count));
        for leaf in [1, 3, LEAF] {
            let mut hits: HashMap<String, u32> = HashMap::new();
            for seed in 0..rounds {
                for code in sorted_in(leaf, source, count.into(), seed.into()) {
                    *hits.entry(code).or_default() += 1;
                }
            }
            assert_eq!(hits.len(), size as usize);
            let expected = f64::from(rounds) * q;
            let variance = expected * (1.0 - q);
            let chi2: f64 = hits
                .values()
                .map(|&h| (f64::from(h) - expected).powi(2) / variance)
                .sum();
            // 439 degrees of freedom: mean 439, standard deviation about 30.
            assert!(chi2 < 439.0 + 6.0 * 30.0, "leaf {leaf}: chi-square {chi2}");
            assert!(chi2 > 439.0 - 6.0 * 30.0, "leaf {leaf}: chi-square {chi2}");
        }
    }

    #[test]
    fn shares_follow_their_parts() {
        let mut rng = StdRng::seed_from_u64(9);
        let big = BigUint::from(2u8).pow(100);
        let half = &big >> 1u32;
        let draws: Vec<u64> = (0..2000)
            .map(|_| share(&mut rng, &big, &half, 1000))
            .collect();
        let mean = draws.iter().sum::<u64>() as f64 / draws.len() as f64;
        assert!((mean - 500.0).abs() < 3.0, "{mean}");
        assert_eq!(share(&mut rng, &big, &BigUint::from(1u8), 1000), 0);
        let ten = BigUint::from(10u8);
        assert_eq!(share(&mut rng, &ten, &ten, 7), 7);
        assert_eq!(share(&mut rng, &ten, &BigUint::zero(), 7), 0);
    }
}
