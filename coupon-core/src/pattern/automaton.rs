//! The automaton behind a pattern.
//!
//! The HIR is compiled to an NFA over the 38 symbols of the code alphabet, determinized by
//! the subset construction and minimized. The language is finite, so the DFA is acyclic and
//! every state can say exactly how many distinct strings it leads to; that count drives
//! `size`, ranking, unranking and uniform sampling.

use std::collections::HashMap;

use num_bigint::BigUint;
use num_traits::{One, Zero};
use regex_syntax::hir::{Hir, HirKind};

use super::syntax::class_members;
use super::{symbol_char, symbol_of, SymbolSet, SYMBOLS};

/// The most DFA states a pattern may need.
pub(super) const MAX_DFA_STATES: usize = 100_000;

/// The most NFA nodes a pattern may need.
const MAX_NFA_NODES: usize = 200_000;

/// The most NFA node visits the subset construction may make.
const MAX_SUBSET_WORK: usize = 50_000_000;

/// Marks a missing transition in [`State::next`].
const NO_STATE: u32 = u32::MAX;

/// Why a HIR could not be turned into an automaton.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum BuildError {
    /// The automaton would exceed one of the limits.
    TooComplex,
    /// The HIR holds something the validation should have refused.
    Unsupported(&'static str),
}

/// A state of the minimal DFA.
#[derive(Debug)]
pub(super) struct State {
    /// Whether the string read so far is in the language.
    pub(super) accept: bool,
    /// The outgoing transitions grouped by target, ordered by their lowest symbol.
    pub(super) edges: Vec<Edge>,
    /// The target of each symbol, [`NO_STATE`] if none.
    next: [u32; SYMBOLS],
    /// The symbols that have a transition.
    symbols: SymbolSet,
}

/// The transitions from one state to another.
#[derive(Debug)]
pub(super) struct Edge {
    /// The target state.
    pub(super) target: u32,
    /// The symbols leading there.
    pub(super) symbols: SymbolSet,
}

/// A minimal acyclic DFA with per-state string counts.
///
/// States are numbered so that every transition goes to a lower number.
#[derive(Debug)]
pub(super) struct Dfa {
    start: u32,
    states: Vec<State>,
    /// How many strings each state leads to (itself included if accepting).
    counts: Vec<BigUint>,
    min_len: usize,
    max_len: usize,
}

impl Dfa {
    /// Builds the minimal DFA of `hir`.
    pub(super) fn build(hir: &Hir) -> Result<Dfa, BuildError> {
        let mut nfa = Nfa::default();
        let accept = nfa.push(Node::Match)?;
        let start = nfa.compile(hir, accept)?;
        let raw = determinize(&nfa, start)?;
        let (states, start) = minimize(&raw);
        Ok(Dfa::with_counts(states, start))
    }

    /// Counts the strings, shortest and longest lengths from every state.
    fn with_counts(states: Vec<State>, start: u32) -> Dfa {
        let mut counts: Vec<BigUint> = Vec::with_capacity(states.len());
        let mut min_lens: Vec<usize> = Vec::with_capacity(states.len());
        let mut max_lens: Vec<usize> = Vec::with_capacity(states.len());
        for state in &states {
            let mut count = if state.accept {
                BigUint::one()
            } else {
                BigUint::zero()
            };
            let mut min_len = if state.accept { 0 } else { usize::MAX };
            let mut max_len = 0;
            for edge in &state.edges {
                let target = edge.target as usize;
                count += &counts[target] * edge.symbols.count_ones();
                min_len = min_len.min(min_lens[target].saturating_add(1));
                max_len = max_len.max(max_lens[target] + 1);
            }
            counts.push(count);
            min_lens.push(min_len);
            max_lens.push(max_len);
        }
        let at = start as usize;
        Dfa {
            start,
            min_len: min_lens[at],
            max_len: max_lens[at],
            states,
            counts,
        }
    }

    /// The start state.
    pub(super) fn start(&self) -> u32 {
        self.start
    }

    /// All states; transitions go to lower indices.
    pub(super) fn states(&self) -> &[State] {
        &self.states
    }

    /// How many strings `state` leads to.
    pub(super) fn count(&self, state: u32) -> &BigUint {
        &self.counts[state as usize]
    }

    /// How many distinct strings the language has.
    pub(super) fn size(&self) -> &BigUint {
        self.count(self.start)
    }

    /// The length of the shortest string.
    pub(super) fn min_len(&self) -> usize {
        self.min_len
    }

    /// The length of the longest string.
    pub(super) fn max_len(&self) -> usize {
        self.max_len
    }

    fn state(&self, state: u32) -> &State {
        &self.states[state as usize]
    }

    /// The state after reading `byte` in `state`, if any.
    fn step(&self, state: u32, byte: u8) -> Option<u32> {
        let symbol = symbol_of(char::from(byte))?;
        let target = self.state(state).next[symbol];
        (target != NO_STATE).then_some(target)
    }

    /// Whether `code` is in the language.
    pub(super) fn contains(&self, code: &str) -> bool {
        if code.len() > self.max_len {
            return false;
        }
        let mut state = self.start;
        for byte in code.bytes() {
            match self.step(state, byte) {
                Some(next) => state = next,
                None => return false,
            }
        }
        self.state(state).accept
    }

    /// The position of `code` in lexicographic order, if it is in the language.
    pub(super) fn rank(&self, code: &str) -> Option<BigUint> {
        if code.len() > self.max_len {
            return None;
        }
        let mut rank = BigUint::zero();
        let mut state = self.start;
        for byte in code.bytes() {
            let current = self.state(state);
            let next = self.step(state, byte)?;
            if current.accept {
                rank += 1u32;
            }
            let symbol = symbol_of(char::from(byte))?;
            let before = current.symbols & ((1 << symbol) - 1);
            for smaller in symbols(before) {
                rank += self.count(current.next[smaller]);
            }
            state = next;
        }
        self.state(state).accept.then_some(rank)
    }

    /// A cursor on the `index`-th string in lexicographic order, or an exhausted one.
    pub(super) fn cursor(&self, index: &BigUint) -> Cursor<'_> {
        let mut cursor = Cursor {
            dfa: self,
            path: Vec::with_capacity(self.max_len),
            text: String::with_capacity(self.max_len),
            state: self.start,
            position: Position::Exhausted,
        };
        if index >= self.size() {
            return cursor;
        }
        // Invariant: `rest` is below the count of the cursor's state.
        let mut rest = index.clone();
        loop {
            let current = self.state(cursor.state);
            if current.accept {
                if rest.is_zero() {
                    cursor.position = Position::Unread;
                    return cursor;
                }
                rest -= 1u32;
            }
            let Some((symbol, target)) = self.transition_to(current, &mut rest) else {
                return cursor;
            };
            cursor.push(symbol, target);
        }
    }

    /// The transition of `state` under which the `rest`-th string after it lies, with
    /// `rest` made relative to the target (`None` if `rest` is past the state's strings).
    fn transition_to(&self, state: &State, rest: &mut BigUint) -> Option<(usize, u32)> {
        for symbol in symbols(state.symbols) {
            let target = state.next[symbol];
            let count = self.count(target);
            if *rest < *count {
                return Some((symbol, target));
            }
            *rest -= count;
        }
        None
    }
}

/// The symbols of a set, lowest first.
fn symbols(set: SymbolSet) -> impl Iterator<Item = usize> {
    let mut rest = set;
    std::iter::from_fn(move || {
        if rest == 0 {
            return None;
        }
        let symbol = rest.trailing_zeros() as usize;
        rest &= rest - 1;
        Some(symbol)
    })
}

/// Where a [`Cursor`] stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    /// On a string not yet returned.
    Unread,
    /// On a string already returned.
    Read,
    /// Past the last string.
    Exhausted,
}

/// Walks the language in lexicographic order from some string on.
///
/// Each step moves to the next accepting state of a depth-first walk, which costs at most a
/// few steps per symbol of the alphabet and of the code length: constant per string.
#[derive(Debug)]
pub(super) struct Cursor<'a> {
    dfa: &'a Dfa,
    /// The states before each symbol of `text`, with the symbol taken.
    path: Vec<(u32, usize)>,
    text: String,
    state: u32,
    position: Position,
}

impl Cursor<'_> {
    fn push(&mut self, symbol: usize, target: u32) {
        self.path.push((self.state, symbol));
        self.text.push(char::from(symbol_char(symbol)));
        self.state = target;
    }

    /// Takes the lowest transition from `state` until reaching an accepting state.
    fn descend(&mut self) {
        while !self.dfa.state(self.state).accept {
            let current = self.dfa.state(self.state);
            let Some(symbol) = symbols(current.symbols).next() else {
                return;
            };
            self.push(symbol, current.next[symbol]);
        }
    }

    /// Moves to the next string; false when there is none.
    fn advance(&mut self) -> bool {
        let current = self.dfa.state(self.state);
        if let Some(symbol) = symbols(current.symbols).next() {
            self.push(symbol, current.next[symbol]);
            self.descend();
            return true;
        }
        while let Some((state, symbol)) = self.path.pop() {
            self.text.pop();
            self.state = state;
            let current = self.dfa.state(state);
            let above = current.symbols & !((2 << symbol) - 1);
            if let Some(next) = symbols(above).next() {
                self.push(next, current.next[next]);
                self.descend();
                return true;
            }
        }
        false
    }
}

impl Iterator for Cursor<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let on_string = match self.position {
            Position::Exhausted => false,
            Position::Read => self.advance(),
            Position::Unread => true,
        };
        if !on_string {
            self.position = Position::Exhausted;
            return None;
        }
        self.position = Position::Read;
        Some(self.text.clone())
    }
}

/// A node of the NFA.
#[derive(Debug)]
enum Node {
    /// Reads one of `symbols` and goes to `next`.
    Step { symbols: SymbolSet, next: u32 },
    /// Goes to every one of the nodes without reading.
    Split(Vec<u32>),
    /// Accepts.
    Match,
}

/// A Thompson-style NFA; it has no cycles since every repetition is bounded.
#[derive(Debug, Default)]
struct Nfa {
    nodes: Vec<Node>,
}

impl Nfa {
    fn push(&mut self, node: Node) -> Result<u32, BuildError> {
        if self.nodes.len() >= MAX_NFA_NODES {
            return Err(BuildError::TooComplex);
        }
        self.nodes.push(node);
        Ok((self.nodes.len() - 1) as u32)
    }

    fn split(&mut self, targets: Vec<u32>) -> Result<u32, BuildError> {
        match targets.as_slice() {
            [single] => Ok(*single),
            _ => self.push(Node::Split(targets)),
        }
    }

    /// Adds the nodes matching `hir` and then going on to `next`; returns the entry node.
    fn compile(&mut self, hir: &Hir, next: u32) -> Result<u32, BuildError> {
        match hir.kind() {
            HirKind::Empty => Ok(next),
            HirKind::Literal(literal) => literal.0.iter().rev().try_fold(next, |next, &byte| {
                let symbol = symbol_of(char::from(byte)).ok_or(BuildError::Unsupported(
                    "a character outside the code alphabet",
                ))?;
                self.push(Node::Step {
                    symbols: 1 << symbol,
                    next,
                })
            }),
            HirKind::Class(_) => {
                let (symbols, outside) = class_members(hir);
                if !outside.is_empty() || symbols == 0 {
                    return Err(BuildError::Unsupported("a class outside the code alphabet"));
                }
                self.push(Node::Step { symbols, next })
            }
            HirKind::Look(_) => Err(BuildError::Unsupported("an assertion")),
            HirKind::Repetition(repetition) => {
                let max = repetition
                    .max
                    .ok_or(BuildError::Unsupported("an unbounded repetition"))?;
                // A part matching only the empty string adds nothing, however repeated.
                if repetition.sub.properties().maximum_len() == Some(0) {
                    return Ok(next);
                }
                let mut entry = next;
                for _ in repetition.min..max {
                    let once = self.compile(&repetition.sub, entry)?;
                    entry = self.split(vec![once, next])?;
                }
                for _ in 0..repetition.min {
                    entry = self.compile(&repetition.sub, entry)?;
                }
                Ok(entry)
            }
            HirKind::Capture(capture) => self.compile(&capture.sub, next),
            HirKind::Concat(parts) => parts
                .iter()
                .rev()
                .try_fold(next, |next, part| self.compile(part, next)),
            HirKind::Alternation(branches) => {
                let entries = branches
                    .iter()
                    .map(|branch| self.compile(branch, next))
                    .collect::<Result<Vec<_>, _>>()?;
                self.split(entries)
            }
        }
    }

    /// The partition of the used symbols into classes that no node tells apart.
    fn symbol_classes(&self) -> Vec<SymbolSet> {
        let mut sets: Vec<SymbolSet> = self
            .nodes
            .iter()
            .filter_map(|node| match node {
                Node::Step { symbols, .. } => Some(*symbols),
                _ => None,
            })
            .collect();
        sets.sort_unstable();
        sets.dedup();
        let used = sets.iter().fold(0, |all, set| all | set);
        let mut classes = vec![used];
        for set in sets {
            classes = classes
                .into_iter()
                .flat_map(|class| [class & set, class & !set])
                .filter(|class| *class != 0)
                .collect();
        }
        classes.retain(|class| *class != 0);
        classes
    }
}

/// Computes epsilon closures, reusing its buffers.
struct Closer {
    /// The generation in which each node was last reached.
    seen: Vec<u32>,
    generation: u32,
    stack: Vec<u32>,
}

impl Closer {
    fn new(nodes: usize) -> Closer {
        Closer {
            seen: vec![0; nodes],
            generation: 0,
            stack: Vec::new(),
        }
    }

    /// The sorted reading and accepting nodes reachable from `seeds` without reading.
    fn close(&mut self, nfa: &Nfa, seeds: impl IntoIterator<Item = u32>) -> Vec<u32> {
        // At most 38 closures per DFA state, so the generation cannot wrap around.
        self.generation += 1;
        let mut set = Vec::new();
        self.stack.extend(seeds);
        while let Some(node) = self.stack.pop() {
            let seen = &mut self.seen[node as usize];
            if *seen == self.generation {
                continue;
            }
            *seen = self.generation;
            match &nfa.nodes[node as usize] {
                Node::Split(targets) => self.stack.extend(targets),
                Node::Step { .. } | Node::Match => set.push(node),
            }
        }
        set.sort_unstable();
        set
    }
}

/// A DFA state before minimization.
struct RawState {
    accept: bool,
    /// (target, symbols), one per target.
    edges: Vec<(u32, SymbolSet)>,
}

/// The subset construction; state 0 is the start.
fn determinize(nfa: &Nfa, start: u32) -> Result<Vec<RawState>, BuildError> {
    let classes = nfa.symbol_classes();
    let mut closer = Closer::new(nfa.nodes.len());
    let first = closer.close(nfa, [start]);
    let mut work = first.len();
    let mut ids: HashMap<Vec<u32>, u32> = HashMap::from([(first.clone(), 0)]);
    let mut pending: Vec<Vec<u32>> = vec![first];
    let mut raw: Vec<RawState> = Vec::new();
    while raw.len() < pending.len() {
        let set = std::mem::take(&mut pending[raw.len()]);
        let accept = set
            .iter()
            .any(|&node| matches!(nfa.nodes[node as usize], Node::Match));
        let mut edges: Vec<(u32, SymbolSet)> = Vec::new();
        for &class in &classes {
            let probe = class & class.wrapping_neg();
            let targets = set
                .iter()
                .filter_map(|&node| match nfa.nodes[node as usize] {
                    Node::Step { symbols, next } if symbols & probe != 0 => Some(next),
                    _ => None,
                });
            let target = closer.close(nfa, targets);
            work += set.len() + target.len();
            if target.is_empty() {
                continue;
            }
            let id = match ids.get(&target) {
                Some(&id) => id,
                None => {
                    if pending.len() >= MAX_DFA_STATES {
                        return Err(BuildError::TooComplex);
                    }
                    let id = pending.len() as u32;
                    ids.insert(target.clone(), id);
                    pending.push(target);
                    id
                }
            };
            match edges.iter_mut().find(|(to, _)| *to == id) {
                Some((_, symbols)) => *symbols |= class,
                None => edges.push((id, class)),
            }
        }
        if work > MAX_SUBSET_WORK {
            return Err(BuildError::TooComplex);
        }
        raw.push(RawState { accept, edges });
    }
    Ok(raw)
}

/// Merges equivalent states bottom-up (the DFA is acyclic, so states with the same
/// acceptance and the same transitions to already merged states are equivalent). Returns
/// the states, numbered so that transitions go to lower numbers, and the start.
fn minimize(raw: &[RawState]) -> (Vec<State>, u32) {
    struct Minimizer<'r> {
        raw: &'r [RawState],
        canonical: Vec<u32>,
        known: HashMap<(bool, Vec<(u32, SymbolSet)>), u32>,
        states: Vec<State>,
    }

    impl Minimizer<'_> {
        // Recursion depth is at most the longest code plus one.
        fn visit(&mut self, id: u32) -> u32 {
            let index = id as usize;
            if self.canonical[index] != NO_STATE {
                return self.canonical[index];
            }
            let raw = &self.raw[index];
            let mut edges: Vec<(u32, SymbolSet)> = raw
                .edges
                .iter()
                .map(|&(target, symbols)| (self.visit(target), symbols))
                .collect();
            edges.sort_unstable();
            edges.dedup_by(|later, earlier| {
                let same = later.0 == earlier.0;
                if same {
                    earlier.1 |= later.1;
                }
                same
            });
            let key = (raw.accept, edges);
            let canonical = match self.known.get(&key) {
                Some(&canonical) => canonical,
                None => {
                    let canonical = self.states.len() as u32;
                    self.states.push(State::new(key.0, &key.1));
                    self.known.insert(key, canonical);
                    canonical
                }
            };
            self.canonical[index] = canonical;
            canonical
        }
    }

    let mut minimizer = Minimizer {
        raw,
        canonical: vec![NO_STATE; raw.len()],
        known: HashMap::new(),
        states: Vec::new(),
    };
    let start = minimizer.visit(0);
    (minimizer.states, start)
}

impl State {
    fn new(accept: bool, edges: &[(u32, SymbolSet)]) -> State {
        let mut next = [NO_STATE; SYMBOLS];
        let mut all = 0;
        for &(target, set) in edges {
            all |= set;
            for symbol in symbols(set) {
                next[symbol] = target;
            }
        }
        let mut edges: Vec<Edge> = edges
            .iter()
            .map(|&(target, symbols)| Edge { target, symbols })
            .collect();
        edges.sort_unstable_by_key(|edge| edge.symbols.trailing_zeros());
        State {
            accept,
            edges,
            next,
            symbols: all,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_syntax::hir::translate::TranslatorBuilder;

    fn dfa(pattern: &str) -> Dfa {
        let ast = regex_syntax::ast::parse::Parser::new()
            .parse(pattern)
            .expect("test pattern parses");
        let hir = TranslatorBuilder::new()
            .unicode(false)
            .build()
            .translate(pattern, &ast)
            .expect("test pattern translates");
        Dfa::build(&hir).expect("test pattern builds")
    }

    #[test]
    fn minimization_merges_equivalent_states() {
        // Two branches of the same shape need one chain of states.
        assert_eq!(dfa("(A[0-9]|B[0-9])").states().len(), 3);
        assert_eq!(dfa("[A-Z0-9]{12}").states().len(), 13);
        assert_eq!(dfa("(AB|CB|AD)").states().len(), 4);
    }

    #[test]
    fn lengths_follow_the_language() {
        let dfa = dfa("X[0-9]{2,5}");
        assert_eq!((dfa.min_len(), dfa.max_len()), (3, 6));
    }

    #[test]
    fn symbol_classes_partition_the_used_symbols() {
        let mut nfa = Nfa::default();
        for symbols in [0b0111, 0b0110, 0b1000_0000] {
            nfa.push(Node::Step { symbols, next: 0 }).expect("small");
        }
        let mut classes = nfa.symbol_classes();
        classes.sort_unstable();
        assert_eq!(classes, vec![0b0001, 0b0110, 0b1000_0000]);
    }
}
