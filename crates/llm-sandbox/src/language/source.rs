//! Source masking: comments removed and string literal contents blanked, offsets kept.
//!
//! [`MaskedSource::new`] lexes code just enough to tell code from comments and string literals.
//! The result has the same length and line structure as the input: every byte of a comment and of
//! a string literal's contents is replaced by a space (newlines are kept), while quotes, string
//! prefixes and code stay. A regular expression run on [`MaskedSource::masked`] therefore only
//! sees code, and any byte offset it finds is also an offset into the original code, on the same
//! line. The string literals themselves are kept, decoded, in [`MaskedSource::strings`], for the
//! places where a language takes a name as a string (`require('fs')`, `__import__("os")`).
//!
//! Code inside string interpolation (Python f-string replacement fields, JavaScript `${…}`, Ruby
//! `#{…}`) is code, so it is not masked: `f"{os.system('id')}"` still shows `os.system(`.
//!
//! This is a lexer, not a parser: it is exact for well-formed code of the supported forms and
//! degrades gracefully (never panics, stays linear in practice) on anything else.
//!
//! This file is mounted as `language::source`, because [`LanguageHandler`] uses it, and is
//! re-exported as `security::source`.
//!
//! [`LanguageHandler`]: crate::language::LanguageHandler

/// The lexical family of a language: how its comments and string literals look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Syntax {
    /// Python: `#` comments; `'…'`, `"…"`, `'''…'''`, `"""…"""` with the prefixes `r`, `b`, `f`,
    /// `u`, `t` (raw strings keep backslashes); f-string replacement fields are code.
    Python,
    /// C, C++, Java, JavaScript: `//` and `/* */` comments; `'…'` and `"…"`; JavaScript template
    /// literals `` `…` `` whose `${…}` is code; Java text blocks `"""…"""`; C++ raw strings
    /// `R"d(…)d"` and digit separators (`1'000`); JavaScript regular expression literals.
    #[default]
    CLike,
    /// Go: as [`Syntax::CLike`], but backticks delimit raw strings (no escapes, no
    /// interpolation) and there are no regular expression literals.
    Go,
    /// Ruby: `#` comments, `=begin`/`=end` blocks, `__END__`; `'…'` (only `\\` and `\'`
    /// escape), `"…"` and `` `…` `` whose `#{…}` is code; `%q(…)`-style literals; heredocs;
    /// regular expression literals.
    Ruby,
}

/// One string literal (or one literal segment of an interpolated string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StringLiteral {
    /// The contents with escapes decoded (raw strings as written).
    pub value: String,
    /// The 1-based line where the contents start.
    pub line: usize,
    /// Byte offset of the first byte of the contents (just after the opening quote).
    pub start: usize,
    /// Byte offset just past the contents (the closing quote, or the end of an unterminated one).
    pub end: usize,
}

/// Code with comments and string contents blanked out, and the string literals it had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskedSource {
    /// The code, same length and lines, with comments and string contents replaced by spaces.
    pub masked: String,
    /// The string literals, in order of their start offset.
    pub strings: Vec<StringLiteral>,
    /// Byte offsets where each line starts (the first is 0).
    line_starts: Vec<usize>,
}

impl MaskedSource {
    /// Lexes `code` as `syntax`.
    pub fn new(code: &str, syntax: Syntax) -> Self {
        let line_starts = line_starts(code);
        let mut lexer = Lexer {
            src: code.as_bytes(),
            text: code,
            out: code.as_bytes().to_vec(),
            strings: Vec::new(),
            pos: 0,
            syntax,
            line_starts: &line_starts,
            nesting: 0,
            heredocs: Vec::new(),
        };
        lexer.code(Nest::Top);
        let Lexer {
            out, mut strings, ..
        } = lexer;
        strings.sort_by_key(|s| s.start);
        // Only whole characters between ASCII delimiters are replaced, so this stays UTF-8.
        let masked = String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        MaskedSource {
            masked,
            strings,
            line_starts,
        }
    }

    /// The 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// The number of lines.
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The byte range of a 1-based line, without its line break; `None` past the last line.
    pub fn line_range(&self, line: usize) -> Option<std::ops::Range<usize>> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let end = self
            .line_starts
            .get(line)
            .map_or(self.masked.len(), |next| next - 1);
        Some(start..end)
    }

    /// The string literal whose contents start exactly at `offset` (just after its quote).
    pub fn string_at(&self, offset: usize) -> Option<&StringLiteral> {
        let index = self.strings.partition_point(|s| s.start < offset);
        self.strings.get(index).filter(|s| s.start == offset)
    }
}

fn line_starts(code: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(code.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// Deeper interpolation than this is lexed as plain string contents (no recursion).
const MAX_NESTING: usize = 32;
/// A JavaScript/Ruby regular expression literal longer than this is taken for a division.
const MAX_REGEX_LITERAL: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nest {
    /// The file itself.
    Top,
    /// `${…}` or `#{…}`: ends at the matching `}`.
    Braces,
    /// A Python f-string replacement field: ends at the matching `}`; a top-level `:` starts
    /// the format spec.
    FString,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escapes {
    /// No escapes at all (Go raw strings).
    None,
    /// A backslash keeps the next character from closing the string; both are kept (Python raw).
    Raw,
    /// Only `\\` and `\<quote>` are escapes (Ruby single quotes).
    Single,
    /// The usual escapes, decoded.
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Interp {
    None,
    /// `{…}` with `{{`/`}}` for literal braces (Python f-strings).
    PyBrace,
    /// `${…}` (JavaScript template literals).
    Dollar,
    /// `#{…}` (Ruby).
    Hash,
}

#[derive(Debug, Clone, Copy)]
struct Style {
    quote: u8,
    triple: bool,
    escapes: Escapes,
    interp: Interp,
    /// An unescaped newline ends (unterminated) the literal.
    newline_ends: bool,
}

#[derive(Debug)]
struct Heredoc {
    id: String,
    indented: bool,
}

struct Lexer<'a> {
    src: &'a [u8],
    text: &'a str,
    out: Vec<u8>,
    strings: Vec<StringLiteral>,
    pos: usize,
    syntax: Syntax,
    line_starts: &'a [usize],
    nesting: usize,
    heredocs: Vec<Heredoc>,
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.pos + ahead).copied()
    }

    fn mask(&mut self, start: usize, end: usize) {
        for b in &mut self.out[start..end] {
            if *b != b'\n' && *b != b'\r' {
                *b = b' ';
            }
        }
    }

    fn record(&mut self, start: usize, end: usize, value: String) {
        self.mask(start, end);
        let line = self.line_starts.partition_point(|&s| s <= start);
        self.strings.push(StringLiteral {
            value,
            line,
            start,
            end,
        });
    }

    /// The character at the current position (the input is valid UTF-8 and `pos` is always on
    /// a character boundary).
    fn char_here(&self) -> char {
        self.text[self.pos..].chars().next().unwrap_or('\u{FFFD}')
    }

    fn at_line_start(&self) -> bool {
        self.pos == 0 || self.src[self.pos - 1] == b'\n'
    }

    fn line_end(&self, from: usize) -> usize {
        self.src[from..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(self.src.len(), |i| from + i)
    }

    /// Lexes code until the end, or (nested) until the `}` that closes an interpolation.
    fn code(&mut self, nest: Nest) {
        let mut depth = 0usize;
        while self.pos < self.src.len() {
            let b = self.src[self.pos];
            if nest != Nest::Top {
                match b {
                    b'{' | b'(' | b'[' => {
                        depth += 1;
                        self.pos += 1;
                        continue;
                    }
                    b'}' | b')' | b']' => {
                        self.pos += 1;
                        if depth == 0 {
                            if b == b'}' {
                                return;
                            }
                        } else {
                            depth -= 1;
                        }
                        continue;
                    }
                    b':' if nest == Nest::FString && depth == 0 && self.peek(1) != Some(b'=') => {
                        self.format_spec();
                        return;
                    }
                    _ => {}
                }
            }
            match self.syntax {
                Syntax::Python => self.python_step(),
                Syntax::CLike | Syntax::Go => self.clike_step(),
                Syntax::Ruby => self.ruby_step(nest),
            }
        }
    }

    /// Interpolated code: recurses unless nested too deep.
    fn interpolation(&mut self, nest: Nest) -> bool {
        if self.nesting >= MAX_NESTING {
            return false;
        }
        self.nesting += 1;
        self.code(nest);
        self.nesting -= 1;
        true
    }

    /// A Python format spec, after the `:` of a replacement field, up to its closing `}`.
    fn format_spec(&mut self) {
        self.pos += 1;
        while self.pos < self.src.len() {
            match self.src[self.pos] {
                b'{' => {
                    self.pos += 1;
                    if !self.interpolation(Nest::FString) {
                        return;
                    }
                }
                b'}' => {
                    self.pos += 1;
                    return;
                }
                _ => self.pos += 1,
            }
        }
    }

    fn line_comment(&mut self) {
        let end = self.line_end(self.pos);
        self.mask(self.pos, end);
        self.pos = end;
    }

    fn block_comment(&mut self) {
        let end = find(self.src, self.pos + 2, b"*/").map_or(self.src.len(), |i| i + 2);
        self.mask(self.pos, end);
        self.pos = end;
    }

    // ---- Python ----

    fn python_step(&mut self) {
        match self.src[self.pos] {
            b'#' => self.line_comment(),
            quote @ (b'\'' | b'"') => {
                let (raw, formatted) = self.python_prefix();
                let triple = self.peek(1) == Some(quote) && self.peek(2) == Some(quote);
                self.pos += if triple { 3 } else { 1 };
                self.string_body(Style {
                    quote,
                    triple,
                    escapes: if raw { Escapes::Raw } else { Escapes::Full },
                    interp: if formatted {
                        Interp::PyBrace
                    } else {
                        Interp::None
                    },
                    newline_ends: !triple,
                });
            }
            _ => self.pos += 1,
        }
    }

    /// Whether the letters just before the quote are a string prefix, and which kind.
    fn python_prefix(&self) -> (bool, bool) {
        let mut k = self.pos;
        while k > 0 && self.src[k - 1].is_ascii_alphabetic() {
            k -= 1;
        }
        let prefix = &self.src[k..self.pos];
        if prefix.len() > 2
            || (k > 0 && is_ident_byte(self.src[k - 1]))
            || !prefix.iter().all(|b| b"rRbBuUfFtT".contains(b))
        {
            return (false, false);
        }
        let raw = prefix.iter().any(|b| b.eq_ignore_ascii_case(&b'r'));
        let formatted = prefix
            .iter()
            .any(|b| b.eq_ignore_ascii_case(&b'f') || b.eq_ignore_ascii_case(&b't'));
        (raw, formatted)
    }

    // ---- C, C++, Java, JavaScript, Go ----

    fn clike_step(&mut self) {
        let go = self.syntax == Syntax::Go;
        let b = self.src[self.pos];
        match b {
            b'/' if self.peek(1) == Some(b'/') => self.line_comment(),
            b'/' if self.peek(1) == Some(b'*') => self.block_comment(),
            b'/' if !go && self.regex_allowed() => self.regex_literal(),
            b'"' if !go && self.java_text_block() => {
                self.pos += 3;
                self.string_body(Style {
                    quote: b'"',
                    triple: true,
                    escapes: Escapes::Full,
                    interp: Interp::None,
                    newline_ends: false,
                });
            }
            b'"' if !go && self.cpp_raw_string() => {}
            quote @ (b'"' | b'\'') => {
                if quote == b'\'' && self.digit_separator() {
                    self.pos += 1;
                    return;
                }
                self.pos += 1;
                self.string_body(Style {
                    quote,
                    triple: false,
                    escapes: Escapes::Full,
                    interp: Interp::None,
                    newline_ends: true,
                });
            }
            b'`' => {
                self.pos += 1;
                self.string_body(Style {
                    quote: b'`',
                    triple: false,
                    escapes: if go { Escapes::None } else { Escapes::Full },
                    interp: if go { Interp::None } else { Interp::Dollar },
                    newline_ends: false,
                });
            }
            _ => self.pos += 1,
        }
    }

    /// `"""` followed by only blanks to the end of the line opens a Java text block (in C that
    /// would be an unterminated string, so the two never clash).
    fn java_text_block(&self) -> bool {
        if self.peek(1) != Some(b'"') || self.peek(2) != Some(b'"') {
            return false;
        }
        let rest = &self.src[self.pos + 3..];
        let blanks = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t' || b == b'\x0c' || b == b'\r')
            .count();
        rest.get(blanks) == Some(&b'\n')
    }

    /// A C++ raw string `R"delim(…)delim"` (with an optional `L`, `u`, `U` or `u8` prefix).
    fn cpp_raw_string(&mut self) -> bool {
        let mut k = self.pos;
        while k > 0 && self.src[k - 1].is_ascii_alphanumeric() {
            k -= 1;
        }
        let prefix = &self.src[k..self.pos];
        if !matches!(prefix, b"R" | b"LR" | b"uR" | b"UR" | b"u8R")
            || (k > 0 && is_ident_byte(self.src[k - 1]))
        {
            return false;
        }
        let delim_start = self.pos + 1;
        let Some(open) = self.src[delim_start..]
            .iter()
            .take(17)
            .position(|&b| b == b'(')
            .map(|i| delim_start + i)
        else {
            return false;
        };
        let delim = &self.src[delim_start..open];
        if delim
            .iter()
            .any(|&b| b.is_ascii_whitespace() || b"()\\\"".contains(&b))
        {
            return false;
        }
        let mut closer = Vec::with_capacity(delim.len() + 2);
        closer.push(b')');
        closer.extend_from_slice(delim);
        closer.push(b'"');
        let start = open + 1;
        let (end, next) = match find(self.src, start, &closer) {
            Some(i) => (i, i + closer.len()),
            None => (self.src.len(), self.src.len()),
        };
        self.record(start, end, self.text[start..end].to_string());
        self.pos = next;
        true
    }

    /// A `'` inside a number is a C++14 digit separator (`1'000'000`), not a character literal.
    fn digit_separator(&self) -> bool {
        let mut k = self.pos;
        while k > 0 && (self.src[k - 1].is_ascii_alphanumeric() || self.src[k - 1] == b'_') {
            k -= 1;
        }
        k < self.pos && self.src[k].is_ascii_digit()
    }

    /// Whether a `/` here starts a regular expression literal rather than a division: it does
    /// after an operator, an opening bracket, the start of the file, or a keyword like `return`.
    fn regex_allowed(&self) -> bool {
        let mut k = self.pos;
        while k > 0 && self.src[k - 1].is_ascii_whitespace() {
            k -= 1;
        }
        if k == 0 {
            return true;
        }
        let prev = self.src[k - 1];
        if b"(,=:[!&|?{};+-*%<>~^".contains(&prev) {
            return true;
        }
        if !is_ident_byte(prev) {
            return false;
        }
        let mut w = k;
        while w > 0 && is_ident_byte(self.src[w - 1]) {
            w -= 1;
        }
        let word = &self.src[w..k];
        let keywords: &[&[u8]] = match self.syntax {
            Syntax::Ruby => &[
                b"if", b"elsif", b"unless", b"when", b"while", b"until", b"and", b"or", b"not",
                b"return", b"puts", b"print", b"p", b"then", b"do",
            ],
            _ => &[
                b"return",
                b"typeof",
                b"case",
                b"do",
                b"else",
                b"in",
                b"of",
                b"new",
                b"delete",
                b"void",
                b"throw",
                b"yield",
                b"await",
                b"instanceof",
            ],
        };
        keywords.contains(&word)
    }

    /// A regular expression literal `/…/flags`: its body is masked but not recorded as a string.
    /// One that does not close on its line is a division after all.
    fn regex_literal(&mut self) {
        let mut i = self.pos + 1;
        let mut in_class = false;
        let limit = (self.pos + MAX_REGEX_LITERAL).min(self.src.len());
        while i < limit {
            match self.src[i] {
                b'\n' => break,
                b'\\' => i += 2,
                b'[' => {
                    in_class = true;
                    i += 1;
                }
                b']' => {
                    in_class = false;
                    i += 1;
                }
                b'/' if !in_class => {
                    if i > self.pos + 1 {
                        self.mask(self.pos + 1, i);
                        self.pos = i + 1;
                    } else {
                        // `//` is a comment, handled before; an empty body is not a regex.
                        self.pos += 1;
                    }
                    return;
                }
                _ => i += 1,
            }
        }
        self.pos += 1;
    }

    // ---- Ruby ----

    fn ruby_step(&mut self, nest: Nest) {
        let b = self.src[self.pos];
        if self.at_line_start() {
            if b == b'=' && self.ruby_keyword_line(b"=begin") {
                self.ruby_block_comment();
                return;
            }
            if b == b'_' && nest == Nest::Top && self.ruby_end_marker() {
                let end = self.src.len();
                self.mask(self.pos, end);
                self.pos = end;
                return;
            }
        }
        match b {
            b'#' => self.line_comment(),
            b'\'' => {
                self.pos += 1;
                self.string_body(Style {
                    quote: b'\'',
                    triple: false,
                    escapes: Escapes::Single,
                    interp: Interp::None,
                    newline_ends: false,
                });
            }
            quote @ (b'"' | b'`') => {
                self.pos += 1;
                self.string_body(Style {
                    quote,
                    triple: false,
                    escapes: Escapes::Full,
                    interp: Interp::Hash,
                    newline_ends: false,
                });
            }
            // `$'`, `$"`, `` $` ``: special globals, not quotes.
            b'$' if self.peek(1).is_some_and(|b| b.is_ascii_punctuation()) => self.pos += 2,
            // `?'` is the character `'` (but `?'x'` is a ternary); `?\x` an escaped character.
            b'?' if self.peek(1) == Some(b'\\') => self.pos = (self.pos + 3).min(self.src.len()),
            b'?' if matches!(self.peek(1), Some(b'\'' | b'"' | b'`'))
                && !self.peek(2).is_some_and(is_ident_byte) =>
            {
                let c = self.src[self.pos + 1] as char;
                self.record(self.pos + 1, self.pos + 2, c.to_string());
                self.pos += 2;
            }
            b'%' if self.ruby_percent_literal() => {}
            b'<' if self.peek(1) == Some(b'<') => {
                if !self.ruby_heredoc_marker() {
                    self.pos += 2;
                }
            }
            b'/' if self.regex_allowed() => self.regex_literal(),
            b'\n' if !self.heredocs.is_empty() => {
                self.pos += 1;
                self.ruby_heredoc_bodies();
            }
            _ => self.pos += 1,
        }
    }

    /// Whether the current line starts with `keyword` followed by a blank or the line's end.
    fn ruby_keyword_line(&self, keyword: &[u8]) -> bool {
        self.src[self.pos..].starts_with(keyword)
            && self
                .src
                .get(self.pos + keyword.len())
                .map_or(true, |b| b.is_ascii_whitespace())
    }

    fn ruby_block_comment(&mut self) {
        let start = self.pos;
        let mut line = self.line_end(start);
        let end = loop {
            if line >= self.src.len() {
                break self.src.len();
            }
            self.pos = line + 1;
            let next = self.line_end(self.pos);
            if self.ruby_keyword_line(b"=end") {
                break next;
            }
            line = next;
        };
        self.mask(start, end);
        self.pos = end;
    }

    fn ruby_end_marker(&self) -> bool {
        let end = self.line_end(self.pos);
        let line = &self.src[self.pos..end];
        line == b"__END__" || line == b"__END__\r"
    }

    /// `%q(…)`, `%Q[…]`, `%w{…}`, `%i<…>`, `%x|…|` and the like.
    fn ruby_percent_literal(&mut self) -> bool {
        let (Some(kind), Some(open)) = (self.peek(1), self.peek(2)) else {
            return false;
        };
        if !b"qQwWiIx".contains(&kind)
            || (self.pos > 0
                && (is_ident_byte(self.src[self.pos - 1])
                    || b")]}".contains(&self.src[self.pos - 1])))
        {
            return false;
        }
        let close = match open {
            b'(' => b')',
            b'[' => b']',
            b'{' => b'}',
            b'<' => b'>',
            b if b.is_ascii_punctuation() => b,
            _ => return false,
        };
        let nests = open != close;
        let interpolates = b"QWIx".contains(&kind);
        self.pos += 3;
        let mut start = self.pos;
        let mut value = String::new();
        let mut depth = 0usize;
        while self.pos < self.src.len() {
            let b = self.src[self.pos];
            if b == b'\\' && self.pos + 1 < self.src.len() {
                self.pos += 1;
                let c = self.char_here();
                value.push(c);
                self.pos += c.len_utf8();
                continue;
            }
            if nests && b == open {
                depth += 1;
            } else if b == close {
                if depth == 0 {
                    self.record(start, self.pos, value);
                    self.pos += 1;
                    return true;
                }
                depth -= 1;
            } else if interpolates && b == b'#' && self.peek(1) == Some(b'{') {
                self.record(start, self.pos, std::mem::take(&mut value));
                self.pos += 2;
                if self.interpolation(Nest::Braces) {
                    start = self.pos;
                    continue;
                }
                start = self.pos;
            }
            let c = self.char_here();
            value.push(c);
            self.pos += c.len_utf8();
        }
        self.record(start, self.src.len(), value);
        true
    }

    /// `<<~ID`, `<<-ID`, `<<ID` (capitalised), with the identifier optionally quoted: the body
    /// starts on the next line.
    fn ruby_heredoc_marker(&mut self) -> bool {
        let mut i = self.pos + 2;
        let indented = matches!(self.src.get(i), Some(b'~' | b'-'));
        if indented {
            i += 1;
        }
        let quote = match self.src.get(i) {
            Some(&q @ (b'\'' | b'"' | b'`')) => {
                i += 1;
                Some(q)
            }
            _ => None,
        };
        let id_start = i;
        while i < self.src.len() && (self.src[i].is_ascii_alphanumeric() || self.src[i] == b'_') {
            i += 1;
        }
        let id = &self.src[id_start..i];
        let Some(&first) = id.first() else {
            return false;
        };
        if first.is_ascii_digit() || (!indented && quote.is_none() && !first.is_ascii_uppercase()) {
            return false;
        }
        if let Some(q) = quote {
            if self.src.get(i) != Some(&q) {
                return false;
            }
            i += 1;
        }
        self.heredocs.push(Heredoc {
            id: String::from_utf8_lossy(id).into_owned(),
            indented,
        });
        self.pos = i;
        true
    }

    /// The bodies of the heredocs opened on the line that just ended, one after the other.
    fn ruby_heredoc_bodies(&mut self) {
        for heredoc in std::mem::take(&mut self.heredocs) {
            let start = self.pos;
            let mut line_start = start;
            loop {
                if line_start >= self.src.len() {
                    let end = self.src.len();
                    self.record(start, end, self.text[start..end].to_string());
                    self.pos = end;
                    break;
                }
                let line_end = self.line_end(line_start);
                let line = self.text[line_start..line_end].trim_end_matches('\r');
                let line = if heredoc.indented {
                    line.trim_start()
                } else {
                    line
                };
                if line == heredoc.id {
                    self.record(start, line_start, self.text[start..line_start].to_string());
                    self.pos = (line_end + 1).min(self.src.len());
                    break;
                }
                line_start = line_end + 1;
            }
        }
    }

    // ---- strings ----

    /// The contents of a string literal, from just after its opening quote(s) to just past its
    /// closing quote(s). Interpolated code splits it into several recorded segments.
    fn string_body(&mut self, style: Style) {
        let mut start = self.pos;
        let mut value = String::new();
        let keep_unknown_escapes = self.syntax == Syntax::Python;
        while self.pos < self.src.len() {
            let b = self.src[self.pos];
            if b == b'\\' {
                match style.escapes {
                    Escapes::None => {}
                    Escapes::Full => {
                        let (decoded, used) =
                            decode_escape(&self.text[self.pos..], keep_unknown_escapes);
                        value.push_str(&decoded);
                        self.pos += used;
                        continue;
                    }
                    Escapes::Raw => {
                        value.push('\\');
                        self.pos += 1;
                        if self.pos < self.src.len() {
                            let c = self.char_here();
                            value.push(c);
                            self.pos += c.len_utf8();
                        }
                        continue;
                    }
                    Escapes::Single => {
                        match self.peek(1) {
                            Some(next) if next == b'\\' || next == style.quote => {
                                value.push(next as char);
                                self.pos += 2;
                            }
                            _ => {
                                value.push('\\');
                                self.pos += 1;
                            }
                        }
                        continue;
                    }
                }
            }
            if b == style.quote
                && (!style.triple
                    || (self.peek(1) == Some(style.quote) && self.peek(2) == Some(style.quote)))
            {
                self.record(start, self.pos, value);
                self.pos += if style.triple { 3 } else { 1 };
                return;
            }
            if b == b'\n' && style.newline_ends {
                self.record(start, self.pos, value);
                return;
            }
            let next = self.peek(1);
            let opens = match style.interp {
                Interp::PyBrace if b == b'{' && next == Some(b'{') => {
                    value.push('{');
                    self.pos += 2;
                    continue;
                }
                Interp::PyBrace if b == b'}' && next == Some(b'}') => {
                    value.push('}');
                    self.pos += 2;
                    continue;
                }
                Interp::PyBrace if b == b'{' => Some((1, Nest::FString)),
                Interp::Dollar if b == b'$' && next == Some(b'{') => Some((2, Nest::Braces)),
                Interp::Hash if b == b'#' && next == Some(b'{') => Some((2, Nest::Braces)),
                _ => None,
            };
            if let Some((skip, nest)) = opens {
                if self.nesting < MAX_NESTING {
                    self.record(start, self.pos, std::mem::take(&mut value));
                    self.pos += skip;
                    self.interpolation(nest);
                    start = self.pos;
                    continue;
                }
            }
            let c = self.char_here();
            value.push(c);
            self.pos += c.len_utf8();
        }
        self.record(start, self.src.len(), value);
    }
}

/// Finds `needle` in `haystack` at or after `from`.
fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from > haystack.len() {
        return None;
    }
    haystack[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| from + i)
}

/// Decodes the escape at the start of `rest` (which starts with a backslash): the text it
/// stands for and how many bytes it used. Unknown escapes keep their backslash when
/// `keep_unknown` (Python), and drop it otherwise (JavaScript, Ruby).
fn decode_escape(rest: &str, keep_unknown: bool) -> (String, usize) {
    let mut chars = rest[1..].chars();
    let Some(c) = chars.next() else {
        return ("\\".into(), 1);
    };
    let simple = match c {
        'n' => Some('\n'),
        't' => Some('\t'),
        'r' => Some('\r'),
        'a' => Some('\x07'),
        'b' => Some('\x08'),
        'f' => Some('\x0c'),
        'v' => Some('\x0b'),
        '\\' | '\'' | '"' | '`' => Some(c),
        _ => None,
    };
    if let Some(decoded) = simple {
        return (decoded.to_string(), 2);
    }
    match c {
        '\n' => return (String::new(), 2),
        '\r' => {
            let used = if rest[2..].starts_with('\n') { 3 } else { 2 };
            return (String::new(), used);
        }
        'x' => return hex_escape(rest, 2, 2),
        'U' if keep_unknown => return hex_escape(rest, 2, 8),
        'u' if rest[2..].starts_with('{') => {
            if let Some(close) = rest[3..].find('}') {
                let digits = &rest[3..3 + close];
                if let Some(ch) = u32::from_str_radix(digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                {
                    return (ch.to_string(), 4 + close);
                }
            }
        }
        'u' => return hex_escape(rest, 2, 4),
        '0'..='7' => {
            let digits = rest[1..]
                .bytes()
                .take(3)
                .take_while(|b| (b'0'..=b'7').contains(b))
                .count();
            let code = u32::from_str_radix(&rest[1..1 + digits], 8).unwrap_or(0);
            let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
            return (ch.to_string(), 1 + digits);
        }
        _ => {}
    }
    let used = 1 + c.len_utf8();
    if keep_unknown {
        (rest[..used].to_string(), used)
    } else {
        (c.to_string(), used)
    }
}

/// `\xHH`, `\uHHHH`, `\UHHHHHHHH`: up to `max` hex digits after `skip` bytes.
fn hex_escape(rest: &str, skip: usize, max: usize) -> (String, usize) {
    let digits = rest[skip..]
        .bytes()
        .take(max)
        .take_while(u8::is_ascii_hexdigit)
        .count();
    if digits == 0 {
        return (rest[1..skip].to_string(), skip);
    }
    let code = u32::from_str_radix(&rest[skip..skip + digits], 16).unwrap_or(0);
    let ch = char::from_u32(code).unwrap_or('\u{FFFD}');
    (ch.to_string(), skip + digits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(code: &str, syntax: Syntax) -> String {
        MaskedSource::new(code, syntax).masked
    }

    fn values(code: &str, syntax: Syntax) -> Vec<String> {
        MaskedSource::new(code, syntax)
            .strings
            .into_iter()
            .map(|s| s.value)
            .collect()
    }

    /// Every masked output keeps the input's length and newlines.
    fn assert_shape(code: &str, syntax: Syntax) {
        let source = MaskedSource::new(code, syntax);
        assert_eq!(source.masked.len(), code.len(), "{code:?}");
        for (a, b) in source.masked.bytes().zip(code.bytes()) {
            assert_eq!(a == b'\n', b == b'\n', "{code:?}");
        }
        for s in &source.strings {
            assert!(s.start <= s.end && s.end <= code.len(), "{s:?}");
            assert_eq!(s.line, source.line_of(s.start));
        }
    }

    #[test]
    fn python_comments_and_strings_are_masked() {
        let code = "import os  # os.system\nprint(\"os.system\")\nx = 'a#b'  # c\n";
        let m = masked(code, Syntax::Python);
        assert_eq!(
            m,
            "import os             \nprint(\"         \")\nx = '   '     \n"
        );
        assert_eq!(values(code, Syntax::Python), ["os.system", "a#b"]);
        assert_shape(code, Syntax::Python);
    }

    #[test]
    fn python_hash_inside_string_is_not_a_comment() {
        let code = "s = \"# not a comment\"; os.system('x')";
        let m = masked(code, Syntax::Python);
        assert!(m.contains("; os.system(' ')"), "{m}");
        assert!(!m.contains("not a comment"));
    }

    #[test]
    fn python_escapes() {
        let code = r#"a = "a\"b"; b = 'it\'s'; c = "\x6fs\n\u0041"; d = "x\qy""#;
        assert_eq!(
            values(code, Syntax::Python),
            ["a\"b", "it's", "os\nA", "x\\qy"]
        );
        let m = masked(code, Syntax::Python);
        assert!(m.contains("; b = '"), "{m}");
        assert_shape(code, Syntax::Python);
    }

    #[test]
    fn python_triple_quotes_span_lines() {
        let code = "x = \"\"\"line one\nimport os\n\"quoted\" \"\"\"\nimport sys\n";
        let source = MaskedSource::new(code, Syntax::Python);
        assert!(!source.masked.contains("import os"));
        assert!(source.masked.contains("import sys"));
        assert_eq!(source.strings.len(), 1);
        assert_eq!(source.strings[0].value, "line one\nimport os\n\"quoted\" ");
        assert_eq!(source.strings[0].line, 1);
        assert_eq!(source.line_of(source.masked.find("import sys").unwrap()), 4);
        let single = "y = '''a ' b\n''' ; z = 1";
        assert!(masked(single, Syntax::Python).contains("; z = 1"));
        assert_shape(code, Syntax::Python);
    }

    #[test]
    fn python_prefixes() {
        let code = r#"a = r"C:\n\"x"; b = b'\x41'; c = Rb"\d"; d = u"é"; e = br'\''"#;
        assert_eq!(
            values(code, Syntax::Python),
            [r#"C:\n\"x"#, "A", r"\d", "é", r"\'"]
        );
        // Letters that are not a prefix, or end an identifier, make a plain string.
        assert_eq!(values(r"xr'\n' + _r'\n'", Syntax::Python), ["\n", "\n"]);
        assert_shape(code, Syntax::Python);
    }

    #[test]
    fn python_fstring_fields_are_code() {
        let code = "f\"id: {os.system('id')} {{literal}} {x:>10} {y!r} {z:#x}\" ; w = 1";
        let source = MaskedSource::new(code, Syntax::Python);
        assert!(
            source.masked.contains("os.system('  ')"),
            "{}",
            source.masked
        );
        assert!(!source.masked.contains("literal"));
        assert!(source.masked.ends_with("\" ; w = 1"), "{}", source.masked);
        let values: Vec<_> = source.strings.iter().map(|s| s.value.as_str()).collect();
        assert!(values.contains(&"id"));
        assert!(values.contains(&"id: "));
        assert!(values.contains(&" {literal} "));
        // Nested same quotes (Python 3.12) and dicts inside fields.
        let nested = "f\"{d[\"k\"]} {({'a': 1})['a']}\"; import os";
        assert!(masked(nested, Syntax::Python).ends_with("; import os"));
        assert_shape(code, Syntax::Python);
    }

    #[test]
    fn python_unterminated_string_stops_at_newline() {
        let code = "x = 'abc\nimport os\n";
        let m = masked(code, Syntax::Python);
        assert!(m.contains("import os"), "{m}");
        assert_shape(code, Syntax::Python);
    }

    #[test]
    fn clike_comments() {
        let code = "a(); // require('x')\n/* import\n os */ b(); /* unterminated";
        let m = masked(code, Syntax::CLike);
        assert_eq!(
            m,
            "a();                \n         \n       b();                "
        );
        assert_shape(code, Syntax::CLike);
    }

    #[test]
    fn clike_strings_and_escapes() {
        let code = r#"s = "a\"b // c"; t = 'it\'s'; u = "\u{41}\u0042\x43"; v = '\q'"#;
        assert_eq!(
            values(code, Syntax::CLike),
            ["a\"b // c", "it's", "ABC", "q"]
        );
        let m = masked(code, Syntax::CLike);
        assert!(m.contains("; t = '"), "{m}");
        assert_shape(code, Syntax::CLike);
    }

    #[test]
    fn javascript_template_literals() {
        let code = "const s = `line\n${require('child_process')} and ${`inner ${x}`} \\` `; go()";
        let source = MaskedSource::new(code, Syntax::CLike);
        assert!(
            source.masked.contains("require('             ')"),
            "{}",
            source.masked
        );
        assert!(source.masked.ends_with("`; go()"), "{}", source.masked);
        let values: Vec<_> = source.strings.iter().map(|s| s.value.as_str()).collect();
        assert!(values.contains(&"child_process"));
        assert!(values.contains(&"line\n"));
        assert!(values.contains(&"inner "));
        assert!(values.contains(&" ` "));
        assert_shape(code, Syntax::CLike);
    }

    #[test]
    fn javascript_regex_literals_are_masked_divisions_are_not() {
        let code = "s.replace(/'/g, \"\"); const r = a / b / c; x = /[/]\"/.test(y); require('fs')";
        let source = MaskedSource::new(code, Syntax::CLike);
        assert!(source.masked.contains("a / b / c"), "{}", source.masked);
        assert!(
            source.masked.ends_with("require('  ')"),
            "{}",
            source.masked
        );
        assert_eq!(source.strings.last().unwrap().value, "fs");
        let ret = "function f() { return /\"/.test(s) }; g('x')";
        assert_eq!(values(ret, Syntax::CLike), ["x"]);
        assert_shape(code, Syntax::CLike);
    }

    #[test]
    fn go_raw_strings_have_no_escapes() {
        let code = "a := `C:\\`; b := \"x\\\"y\"; c := `multi\nline`";
        assert_eq!(values(code, Syntax::Go), ["C:\\", "x\"y", "multi\nline"]);
        // In JavaScript the same backslash escapes the backtick.
        assert_eq!(values("a = `C:\\`;`", Syntax::CLike), ["C:`;"]);
        // Go has no regex literals: a `/` after `(` is just a character.
        assert_eq!(values("x := f(/\"a\"/ 2)", Syntax::Go), ["a"]);
        assert_shape(code, Syntax::Go);
    }

    #[test]
    fn cpp_raw_strings_and_digit_separators() {
        let code =
            "auto s = R\"xy(a \" ) b)xy\"; int n = 1'000'000; char c = 'x'; auto u = u8\"é\";";
        let source = MaskedSource::new(code, Syntax::CLike);
        let values: Vec<_> = source.strings.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(values, ["a \" ) b", "x", "é"]);
        assert!(
            source.masked.contains("int n = 1'000'000;"),
            "{}",
            source.masked
        );
        assert_shape(code, Syntax::CLike);
    }

    #[test]
    fn java_text_blocks() {
        let code = "String s = \"\"\"\n  import x;\n  \"quoted\"\n  \"\"\";\nimport java.io.File;";
        let source = MaskedSource::new(code, Syntax::CLike);
        assert_eq!(source.strings.len(), 1);
        assert!(source.strings[0].value.contains("\"quoted\""));
        assert!(source.masked.ends_with("\"\"\";\nimport java.io.File;"));
        assert!(!source.masked.contains("import x"));
        // In C, `""` followed by more on the same line is two adjacent literals.
        assert_eq!(values("s = \"\"\"a\";", Syntax::CLike), ["", "a"]);
        assert_shape(code, Syntax::CLike);
    }

    #[test]
    fn ruby_comments_and_strings() {
        let code = "require 'socket' # require 'open3'\nputs \"a#b #{x + \"y\"} c\"\n";
        let source = MaskedSource::new(code, Syntax::Ruby);
        assert!(!source.masked.contains("open3"));
        assert!(source.masked.contains("#{x + \" \"}"), "{}", source.masked);
        let values: Vec<_> = source.strings.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(values, ["socket", "a#b ", "y", " c"]);
        assert_shape(code, Syntax::Ruby);
    }

    #[test]
    fn ruby_single_quotes_only_escape_quote_and_backslash() {
        assert_eq!(values(r"a = 'it\'s \n \\'", Syntax::Ruby), [r"it's \n \"]);
        assert_eq!(values("a = \"x\\ty\"", Syntax::Ruby), ["x\ty"]);
    }

    #[test]
    fn ruby_character_literals_and_special_globals_are_not_quotes() {
        let code = "q = ?'\nr = ?\\\"\nf = $\"\ng = $'\nrequire 'socket'\nt = a ?'x':'y'";
        let source = MaskedSource::new(code, Syntax::Ruby);
        assert!(
            source.masked.contains("require '      '"),
            "{}",
            source.masked
        );
        let values: Vec<_> = source.strings.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(values, ["'", "socket", "x", "y"]);
        assert_shape(code, Syntax::Ruby);
    }

    #[test]
    fn ruby_begin_end_blocks_and_end_marker() {
        let code = "a = 1\n=begin\nrequire 'socket'\n=end\nb = 2\n__END__\nrequire 'open3'\n";
        let m = masked(code, Syntax::Ruby);
        assert_eq!(
            m,
            "a = 1\n      \n                \n    \nb = 2\n       \n               \n"
        );
        // `=begin` must start the line.
        assert!(masked("x =begin", Syntax::Ruby).contains("=begin"));
        assert_shape(code, Syntax::Ruby);
    }

    #[test]
    fn ruby_percent_literals_and_heredocs() {
        let code =
            "x = %q(a (b) c)\ny = <<~EOS + 'z'\n  require 'socket'\n  EOS\nrequire 'open3'\n";
        let source = MaskedSource::new(code, Syntax::Ruby);
        let values: Vec<_> = source.strings.iter().map(|s| s.value.as_str()).collect();
        assert_eq!(values, ["a (b) c", "z", "  require 'socket'\n", "open3"]);
        assert!(!source.masked.contains("socket"));
        assert!(source.masked.contains("require '     '"));
        assert_eq!(source.strings[3].line, 5);
        // `a << b` is a shift, `x % (y)` a modulo.
        assert!(MaskedSource::new("a << b\nx % (y)", Syntax::Ruby)
            .strings
            .is_empty());
        assert_shape(code, Syntax::Ruby);
    }

    #[test]
    fn line_numbers_and_lookup() {
        let code = "a\n\nb = \"x\"\n";
        let source = MaskedSource::new(code, Syntax::Python);
        assert_eq!(source.line_of(0), 1);
        assert_eq!(source.line_of(2), 2);
        assert_eq!(source.line_of(3), 3);
        assert_eq!(source.line_count(), 4);
        assert_eq!(source.line_range(1), Some(0..1));
        assert_eq!(source.line_range(2), Some(2..2));
        assert_eq!(source.line_range(3), Some(3..10));
        assert_eq!(source.line_range(4), Some(11..11));
        assert_eq!(source.line_range(0), None);
        assert_eq!(source.line_range(5), None);
        let lit = source.string_at(8).unwrap();
        assert_eq!(
            (lit.value.as_str(), lit.line, lit.start, lit.end),
            ("x", 3, 8, 9)
        );
        assert!(source.string_at(7).is_none());
    }

    #[test]
    fn multibyte_text_keeps_offsets() {
        let code = "s = \"héllo → wörld\" # ünïcode\nimport os";
        for syntax in [Syntax::Python, Syntax::Ruby] {
            let source = MaskedSource::new(code, syntax);
            assert_eq!(source.masked.find("import os"), code.find("import os"));
            assert_eq!(source.strings[0].value, "héllo → wörld");
            assert_shape(code, syntax);
        }
    }

    #[test]
    fn hostile_input_does_not_panic_or_recurse_forever() {
        let deep = "`${".repeat(10_000);
        assert_shape(&deep, Syntax::CLike);
        let deep_py = "f'{".repeat(10_000);
        assert_shape(&deep_py, Syntax::Python);
        let deep_rb = "\"#{".repeat(10_000);
        assert_shape(&deep_rb, Syntax::Ruby);
        for code in [
            "\\",
            "'\\",
            "\"\\",
            "'",
            "\"",
            "`",
            "/*",
            "r\"",
            "R\"(",
            "R\"x",
            "\"\"\"\n",
            "%q",
            "%q(",
            "<<~",
            "<<~EOS\n",
            "=begin",
            "x = /",
            "x = /[",
            "f'{x:",
            "'\\x'",
            "'\\u{'",
            "'\\u{110000}'",
            "'\\777'",
            "é'",
            "'é",
            "\u{FEFF}#",
        ] {
            for syntax in [Syntax::Python, Syntax::CLike, Syntax::Go, Syntax::Ruby] {
                assert_shape(code, syntax);
            }
        }
    }
}
