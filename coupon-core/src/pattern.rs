//! TEMPORARY stand-in until the real engine lands: supports `[A-Z0-9]{n}`-style sequences only.
#![allow(missing_docs)]
use crate::{Error, Result};
use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};

#[derive(Clone, Debug)]
pub struct Pattern {
    source: String,
    parts: Vec<Vec<char>>,
    size: BigUint,
}

impl Pattern {
    pub fn parse(source: &str) -> Result<Pattern> {
        let mut parts = vec![];
        let mut rest = source;
        while !rest.is_empty() {
            let set: Vec<char> = if let Some(r) = rest.strip_prefix('[') {
                let end = r.find(']').ok_or_else(|| Error::invalid_pattern("bad"))?;
                let body: Vec<char> = r[..end].chars().collect();
                rest = &r[end + 1..];
                let mut set = vec![];
                let mut i = 0;
                while i < body.len() {
                    if i + 2 < body.len() && body[i + 1] == '-' {
                        for c in body[i]..=body[i + 2] {
                            set.push(c)
                        }
                        i += 3
                    } else {
                        set.push(body[i]);
                        i += 1
                    }
                }
                set
            } else {
                let c = rest
                    .chars()
                    .next()
                    .ok_or_else(|| Error::invalid_pattern("bad"))?;
                if !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_') {
                    return Err(Error::invalid_pattern(format!("bad char {c:?}")));
                }
                rest = &rest[c.len_utf8()..];
                vec![c]
            };
            let mut n = 1;
            if let Some(r) = rest.strip_prefix('{') {
                let end = r.find('}').ok_or_else(|| Error::invalid_pattern("bad"))?;
                n = r[..end]
                    .parse()
                    .map_err(|_| Error::invalid_pattern("bad"))?;
                rest = &r[end + 1..];
            }
            for _ in 0..n {
                parts.push(set.clone());
            }
        }
        if parts.is_empty() || parts.len() > 64 {
            return Err(Error::invalid_pattern("bad length"));
        }
        let mut size = BigUint::one();
        for p in &parts {
            size *= p.len();
        }
        Ok(Pattern {
            source: source.into(),
            parts,
            size,
        })
    }
    pub fn as_str(&self) -> &str {
        &self.source
    }
    pub fn size(&self) -> &BigUint {
        &self.size
    }
    pub fn contains(&self, code: &str) -> bool {
        self.rank(code).is_some()
    }
    pub fn rank(&self, code: &str) -> Option<BigUint> {
        let chars: Vec<char> = code.chars().collect();
        if chars.len() != self.parts.len() {
            return None;
        }
        let mut r = BigUint::zero();
        for (c, p) in chars.iter().zip(&self.parts) {
            r = r * p.len() + p.iter().position(|x| x == c)?;
        }
        Some(r)
    }
    pub fn nth(&self, index: &BigUint) -> Option<String> {
        if index >= &self.size {
            return None;
        }
        let mut i = index.clone();
        let mut out = vec![];
        for p in self.parts.iter().rev() {
            let d = (&i % p.len()).to_usize()?;
            out.push(p[d]);
            i /= p.len();
        }
        Some(out.into_iter().rev().collect())
    }
    pub fn iter_from(&self, index: &BigUint) -> impl Iterator<Item = String> + '_ {
        let mut i = index.clone();
        std::iter::from_fn(move || {
            let s = self.nth(&i)?;
            i += 1u8;
            Some(s)
        })
    }
    pub fn sampler(&self) -> Sampler<'_> {
        Sampler { p: self }
    }
}
pub struct Sampler<'p> {
    p: &'p Pattern,
}
impl Sampler<'_> {
    pub fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> String {
        self.p
            .parts
            .iter()
            .map(|set| set[rng.random_range(0..set.len())])
            .collect()
    }
}
