//! Parsing and validation of a pattern's source.
//!
//! Everything is checked on the regex-syntax AST, which keeps spans, so that every refusal
//! can say where the problem is. Only a source that passes is translated to HIR.

use regex_syntax::ast::parse::ParserBuilder;
use regex_syntax::ast::{
    self, AssertionKind, Ast, ClassBracketed, ClassPerlKind, ClassSet, ClassSetItem, GroupKind,
    RepetitionKind, RepetitionOp, RepetitionRange, Span,
};
use regex_syntax::hir::translate::TranslatorBuilder;
use regex_syntax::hir::{Class, Hir, HirKind};

use super::{symbol_of, SymbolSet, MAX_CODE_LEN};
use crate::error::{Error, Result};

/// The longest source accepted, in characters.
const MAX_SOURCE_CHARS: usize = 1000;

/// How deeply groups, classes and repetitions may nest.
const NEST_LIMIT: u32 = 32;

/// How many characters of the source a message quotes.
const QUOTED_SOURCE_CHARS: usize = 60;

/// How many characters of the offending part a message quotes.
const EXCERPT_CHARS: usize = 24;

/// What a refusal of flags says after naming them.
const FLAGS_REST: &str = " are not supported; write the upper-case characters explicitly";

/// The hint given when a character is not allowed.
const ALPHABET_HINT: &str = "codes use only A-Z, 0-9, '-' and '_'";

/// Parses and validates `source`, and translates it to HIR (bytes of the code alphabet).
pub(super) fn parse(source: &str) -> Result<Hir> {
    if source.is_empty() {
        return Err(refusal(
            source,
            "it is empty; give at least one character or class, e.g. [A-Z0-9]{8}",
        ));
    }
    let chars = source.chars().count();
    if chars > MAX_SOURCE_CHARS {
        return Err(refusal(
            source,
            format!("it is {chars} characters long, more than the maximum of {MAX_SOURCE_CHARS}"),
        ));
    }
    let checker = Checker { source };
    let ast = ParserBuilder::new()
        .nest_limit(NEST_LIMIT)
        .build()
        .parse(source)
        .map_err(|err| checker.at(err.span(), err.kind(), ""))?;
    checker.check(&ast)?;
    checker.check_length(&ast)?;
    checker.check_not_nullable(&ast)?;
    // Bytes mode as for the classes, so that a negated class reaching past ASCII translates
    // the same way; every byte it matches is in the alphabet by now.
    TranslatorBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .translate(source, &ast)
        .map_err(|err| checker.at(err.span(), err.kind(), ""))
}

/// The error refusing `source` because of `what`.
pub(super) fn refusal(source: &str, what: impl std::fmt::Display) -> Error {
    Error::invalid_pattern(format!(
        "invalid pattern \"{}\": {what}",
        printable(source, QUOTED_SOURCE_CHARS)
    ))
}

/// `text` cut to `max` characters, control characters escaped.
fn printable(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// How a character is named in a message.
fn describe(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        c if c.is_ascii_lowercase() => format!("lower-case letter '{c}'"),
        c if c.is_control() => format!("character '{}'", c.escape_default()),
        c => format!("character '{c}'"),
    }
}

/// The hint that goes with a character outside the alphabet.
fn char_hint(c: char) -> String {
    if c.is_ascii_lowercase() {
        format!("codes are upper-case: write '{}'", c.to_ascii_uppercase())
    } else {
        ALPHABET_HINT.to_owned()
    }
}

/// Validates an AST against one source and words the refusals.
struct Checker<'s> {
    source: &'s str,
}

impl Checker<'_> {
    /// The refusal of `what`, found at `span`, followed by `rest` (the verdict and a hint).
    fn at(&self, span: &Span, what: impl std::fmt::Display, rest: &str) -> Error {
        let offset = span.start.offset;
        let position = self.source.get(..offset).map_or(0, |s| s.chars().count()) + 1;
        let excerpt = self.text(span);
        let mut message = format!("{what} at position {position}");
        if !excerpt.trim().is_empty() && !message.contains(&format!("'{excerpt}'")) {
            message.push_str(&format!(" ('{excerpt}')"));
        }
        message.push_str(rest);
        refusal(self.source, message)
    }

    /// The source text of `span`, shortened for a message.
    fn text(&self, span: &Span) -> String {
        let text = self
            .source
            .get(span.start.offset..span.end.offset)
            .unwrap_or_default();
        printable(text, EXCERPT_CHARS)
    }

    /// Refuses every construct that is not allowed, wherever it is.
    fn check(&self, ast: &Ast) -> Result<()> {
        match ast {
            Ast::Empty(_) => Ok(()),
            Ast::Flags(set) => Err(self.at(
                &set.span,
                format!("flags '{}'", self.text(&set.span)),
                FLAGS_REST,
            )),
            Ast::Literal(literal) => self.check_char(literal.c, &literal.span),
            Ast::Dot(span) => Err(self.at(
                span,
                "'.'",
                " matches any character; use an explicit class like [A-Z0-9]",
            )),
            Ast::Assertion(assertion) => Err(self.assertion(assertion)),
            Ast::ClassUnicode(class) => Err(self.unicode_class(&class.span)),
            Ast::ClassPerl(class) => match (&class.kind, class.negated) {
                (ClassPerlKind::Digit, false) => Ok(()),
                (kind, _) => {
                    let hint = match kind {
                        ClassPerlKind::Word => "use an explicit class like [A-Z0-9_]",
                        ClassPerlKind::Space => "codes cannot contain whitespace",
                        ClassPerlKind::Digit => "use an explicit class like [A-Z]",
                    };
                    Err(self.at(
                        &class.span,
                        format!("'{}'", self.text(&class.span)),
                        &format!(" allows characters outside the code alphabet; {hint}"),
                    ))
                }
            },
            Ast::ClassBracketed(class) => self.check_class(class),
            Ast::Repetition(repetition) => {
                self.check_bounded(&repetition.op)?;
                self.check(&repetition.ast)
            }
            Ast::Group(group) => {
                if let GroupKind::NonCapturing(flags) = &group.kind {
                    if !flags.items.is_empty() {
                        return Err(self.at(
                            &flags.span,
                            format!("flags '{}'", self.text(&flags.span)),
                            FLAGS_REST,
                        ));
                    }
                }
                self.check(&group.ast)
            }
            Ast::Alternation(alternation) => {
                alternation.asts.iter().try_for_each(|ast| self.check(ast))
            }
            Ast::Concat(concat) => concat.asts.iter().try_for_each(|ast| self.check(ast)),
        }
    }

    fn check_char(&self, c: char, span: &Span) -> Result<()> {
        if symbol_of(c).is_some() {
            return Ok(());
        }
        Err(self.at(
            span,
            describe(c),
            &format!(" is not allowed; {}", char_hint(c)),
        ))
    }

    fn assertion(&self, assertion: &ast::Assertion) -> Error {
        let what = match assertion.kind {
            AssertionKind::StartLine
            | AssertionKind::EndLine
            | AssertionKind::StartText
            | AssertionKind::EndText => "anchor",
            _ => "word boundary",
        };
        self.at(
            &assertion.span,
            format!("{what} '{}'", self.text(&assertion.span)),
            " is not supported; a pattern always describes the whole code, so remove it",
        )
    }

    fn unicode_class(&self, span: &Span) -> Error {
        self.at(
            span,
            format!("Unicode class '{}'", self.text(span)),
            " is not supported; use an explicit class like [A-Z]",
        )
    }

    /// Refuses `*`, `+` and `{n,}`.
    fn check_bounded(&self, op: &RepetitionOp) -> Result<()> {
        let min = match op.kind {
            RepetitionKind::ZeroOrMore => 0,
            RepetitionKind::OneOrMore => 1,
            RepetitionKind::Range(RepetitionRange::AtLeast(min)) => min,
            RepetitionKind::ZeroOrOne | RepetitionKind::Range(_) => return Ok(()),
        };
        let low = min.max(1);
        let rest = format!(
            "; use a bounded count like {{{low},{}}}",
            low.saturating_add(7)
        );
        Err(self.at(
            &op.span,
            format!("unbounded repetition '{}'", self.text(&op.span)),
            &rest,
        ))
    }

    /// Refuses a bracketed class that allows a character outside the alphabet or none at all.
    fn check_class(&self, class: &ClassBracketed) -> Result<()> {
        let hir = TranslatorBuilder::new()
            .unicode(false)
            .utf8(false)
            .build()
            .translate(self.source, &Ast::class_bracketed(class.clone()))
            .map_err(|err| match self.check_class_set(&class.kind) {
                Err(clearer) => clearer,
                Ok(()) => self.at(err.span(), err.kind(), ""),
            })?;
        let (symbols, outside) = class_members(&hir);
        if outside.is_empty() && symbols == 0 {
            return Err(self.at(
                &class.span,
                format!("class '{}'", self.text(&class.span)),
                " matches no character",
            ));
        }
        if outside.is_empty() {
            return Ok(());
        }
        let mut examples: Vec<String> = outside
            .iter()
            .take(3)
            .map(|c| format!("'{}'", c.escape_default()))
            .collect();
        if outside.len() > 3 {
            examples.push("…".to_owned());
        }
        let hint = if outside[0].is_ascii_lowercase() {
            format!("{ALPHABET_HINT} (codes are upper-case)")
        } else {
            ALPHABET_HINT.to_owned()
        };
        Err(self.at(
            &class.span,
            format!("class '{}'", self.text(&class.span)),
            &format!(
                " allows characters outside the code alphabet: {}; {hint}",
                examples.join(", ")
            ),
        ))
    }

    /// Finds the Unicode classes and non-ASCII characters inside a bracketed class, to
    /// explain them better than the ASCII translation does.
    fn check_class_set(&self, set: &ClassSet) -> Result<()> {
        match set {
            ClassSet::BinaryOp(op) => {
                self.check_class_set(&op.lhs)?;
                self.check_class_set(&op.rhs)
            }
            ClassSet::Item(item) => self.check_class_item(item),
        }
    }

    fn check_class_item(&self, item: &ClassSetItem) -> Result<()> {
        let non_ascii = |literal: &ast::Literal| {
            if literal.c.is_ascii() {
                Ok(())
            } else {
                self.check_char(literal.c, &literal.span)
            }
        };
        match item {
            ClassSetItem::Unicode(class) => Err(self.unicode_class(&class.span)),
            ClassSetItem::Literal(literal) => non_ascii(literal),
            ClassSetItem::Range(range) => {
                non_ascii(&range.start)?;
                non_ascii(&range.end)
            }
            ClassSetItem::Bracketed(class) => self.check_class_set(&class.kind),
            ClassSetItem::Union(union) => union
                .items
                .iter()
                .try_for_each(|item| self.check_class_item(item)),
            ClassSetItem::Empty(_) | ClassSetItem::Ascii(_) | ClassSetItem::Perl(_) => Ok(()),
        }
    }

    /// Refuses a pattern whose codes can be longer than [`MAX_CODE_LEN`].
    fn check_length(&self, ast: &Ast) -> Result<()> {
        let longest = max_len(ast);
        if longest <= MAX_CODE_LEN as u64 {
            return Ok(());
        }
        let span = overlong_part(ast).span();
        Err(self.at(
            span,
            format!(
                "codes could be up to {longest} characters long, more than the maximum of \
                 {MAX_CODE_LEN}, because of '{}'",
                self.text(span)
            ),
            "; lower a repetition count",
        ))
    }

    /// Refuses a pattern that can match the empty string.
    fn check_not_nullable(&self, ast: &Ast) -> Result<()> {
        if !nullable(ast) {
            return Ok(());
        }
        let (span, what) = empty_cause(ast);
        let excerpt = self.text(span);
        let what = if excerpt.is_empty() {
            what.to_owned()
        } else {
            format!("{what} '{excerpt}'")
        };
        Err(self.at(
            span,
            format!("it can match an empty code because of {what}"),
            "; make at least one part mandatory",
        ))
    }
}

/// The symbols of the alphabet a single-character HIR (a class or a literal) allows, and the
/// characters it allows outside the alphabet (printable ones first).
pub(super) fn class_members(hir: &Hir) -> (SymbolSet, Vec<char>) {
    let ranges: Vec<(u32, u32)> = match hir.kind() {
        HirKind::Class(Class::Bytes(class)) => class
            .ranges()
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
        HirKind::Class(Class::Unicode(class)) => class
            .ranges()
            .iter()
            .map(|r| (u32::from(r.start()), u32::from(r.end())))
            .collect(),
        HirKind::Literal(literal) => literal
            .0
            .iter()
            .map(|&b| (u32::from(b), u32::from(b)))
            .collect(),
        _ => Vec::new(),
    };
    let mut symbols = 0;
    let mut outside = Vec::new();
    for (start, end) in ranges {
        // Past 0xFF only one representative is kept: a range can span all of Unicode.
        for code in start..=end.min(0xFF) {
            let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
            match symbol_of(c) {
                Some(symbol) => symbols |= 1 << symbol,
                None => outside.push(c),
            }
        }
        if end > 0xFF {
            outside.push(char::from_u32(start.max(0x100)).unwrap_or(char::REPLACEMENT_CHARACTER));
        }
    }
    outside.sort_by_key(|c| (!c.is_ascii_graphic(), *c));
    (symbols, outside)
}

/// The most a repetition repeats (`u32::MAX` when unbounded).
fn max_count(op: &RepetitionOp) -> u32 {
    match op.kind {
        RepetitionKind::ZeroOrOne => 1,
        RepetitionKind::Range(RepetitionRange::Exactly(n))
        | RepetitionKind::Range(RepetitionRange::Bounded(_, n)) => n,
        RepetitionKind::ZeroOrMore
        | RepetitionKind::OneOrMore
        | RepetitionKind::Range(RepetitionRange::AtLeast(_)) => u32::MAX,
    }
}

/// The least a repetition repeats.
fn min_count(op: &RepetitionOp) -> u32 {
    match op.kind {
        RepetitionKind::ZeroOrOne | RepetitionKind::ZeroOrMore => 0,
        RepetitionKind::OneOrMore => 1,
        RepetitionKind::Range(RepetitionRange::Exactly(n))
        | RepetitionKind::Range(RepetitionRange::AtLeast(n))
        | RepetitionKind::Range(RepetitionRange::Bounded(n, _)) => n,
    }
}

/// The length of the longest string `ast` matches (saturating). Exact because classes are
/// never empty once checked.
fn max_len(ast: &Ast) -> u64 {
    match ast {
        Ast::Empty(_) | Ast::Flags(_) | Ast::Assertion(_) => 0,
        Ast::Literal(_)
        | Ast::Dot(_)
        | Ast::ClassUnicode(_)
        | Ast::ClassPerl(_)
        | Ast::ClassBracketed(_) => 1,
        Ast::Repetition(repetition) => {
            max_len(&repetition.ast).saturating_mul(u64::from(max_count(&repetition.op)))
        }
        Ast::Group(group) => max_len(&group.ast),
        Ast::Alternation(alternation) => alternation.asts.iter().map(max_len).max().unwrap_or(0),
        Ast::Concat(concat) => concat.asts.iter().map(max_len).fold(0, u64::saturating_add),
    }
}

/// The part of an over-long `ast` to blame: the innermost one that on its own, or added to
/// what comes before it, makes codes longer than [`MAX_CODE_LEN`].
fn overlong_part(ast: &Ast) -> &Ast {
    let limit = MAX_CODE_LEN as u64;
    match ast {
        Ast::Concat(concat) => {
            let mut total = 0u64;
            for part in &concat.asts {
                let len = max_len(part);
                if len > limit {
                    return overlong_part(part);
                }
                total = total.saturating_add(len);
                if total > limit {
                    return part;
                }
            }
            ast
        }
        Ast::Alternation(alternation) => alternation
            .asts
            .iter()
            .find(|branch| max_len(branch) > limit)
            .map_or(ast, overlong_part),
        Ast::Group(group) if max_len(&group.ast) > limit => overlong_part(&group.ast),
        Ast::Repetition(repetition) if max_len(&repetition.ast) > limit => {
            overlong_part(&repetition.ast)
        }
        _ => ast,
    }
}

/// Whether `ast` matches the empty string.
fn nullable(ast: &Ast) -> bool {
    match ast {
        Ast::Empty(_) | Ast::Flags(_) | Ast::Assertion(_) => true,
        Ast::Literal(_)
        | Ast::Dot(_)
        | Ast::ClassUnicode(_)
        | Ast::ClassPerl(_)
        | Ast::ClassBracketed(_) => false,
        Ast::Repetition(repetition) => min_count(&repetition.op) == 0 || nullable(&repetition.ast),
        Ast::Group(group) => nullable(&group.ast),
        Ast::Alternation(alternation) => alternation.asts.iter().any(nullable),
        Ast::Concat(concat) => concat.asts.iter().all(nullable),
    }
}

/// Where and why a nullable `ast` matches the empty string.
fn empty_cause(ast: &Ast) -> (&Span, &'static str) {
    match ast {
        Ast::Repetition(repetition) if min_count(&repetition.op) == 0 => {
            (&repetition.op.span, "the optional repetition")
        }
        Ast::Repetition(repetition) => empty_cause(&repetition.ast),
        Ast::Group(group) if max_len(&group.ast) == 0 => (&group.span, "the empty group"),
        Ast::Group(group) => empty_cause(&group.ast),
        Ast::Alternation(alternation) => alternation
            .asts
            .iter()
            .find(|branch| nullable(branch))
            .map_or((&alternation.span, "the alternation"), empty_cause),
        // Every part is nullable: blame the first one that could match something.
        Ast::Concat(concat) => concat
            .asts
            .iter()
            .find(|part| max_len(part) > 0)
            .or(concat.asts.first())
            .map_or((&concat.span, "the sequence"), empty_cause),
        Ast::Empty(span) => (span, "an empty alternative"),
        _ => (ast.span(), "the part"),
    }
}
