//! Small helpers the language handlers share to find module uses in masked source.

use regex::Regex;

use super::source::{MaskedSource, StringLiteral};

/// Whether the imported `name` is `module` or one of its submodules (`module` + `separator` + …).
pub(crate) fn covers(module: &str, name: &str, separator: char) -> bool {
    let module = module.trim();
    !module.is_empty()
        && (name == module
            || (name.starts_with(module) && name[module.len()..].starts_with(separator)))
}

/// Sorted, deduplicated lines.
pub(crate) fn lines(mut lines: Vec<usize>) -> Vec<usize> {
    lines.sort_unstable();
    lines.dedup();
    lines
}

/// The string literals whose contents start right where a match of `regex` (which ends with
/// the opening quote) ends.
pub(crate) fn literals_after<'s>(
    source: &'s MaskedSource,
    regex: &'s Regex,
) -> impl Iterator<Item = &'s StringLiteral> + 's {
    regex
        .find_iter(&source.masked)
        .filter_map(|m| source.string_at(m.end()))
}

pub(crate) fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80
}

/// Skips blanks (spaces, tabs, form feeds and backslash-newline continuations), and line breaks
/// too when `newlines`.
pub(crate) fn skip_blank(bytes: &[u8], mut pos: usize, newlines: bool) -> usize {
    while let Some(&b) = bytes.get(pos) {
        match b {
            b' ' | b'\t' | b'\x0c' => pos += 1,
            b'\n' | b'\r' if newlines => pos += 1,
            b'\\' if bytes.get(pos + 1) == Some(&b'\n') => pos += 2,
            b'\\' if bytes.get(pos + 1) == Some(&b'\r') && bytes.get(pos + 2) == Some(&b'\n') => {
                pos += 3
            }
            _ => break,
        }
    }
    pos
}

/// Whether the word `keyword` (not a prefix of a longer identifier) is at `pos`.
pub(crate) fn keyword_at(bytes: &[u8], pos: usize, keyword: &str) -> bool {
    bytes
        .get(pos..)
        .is_some_and(|rest| rest.starts_with(keyword.as_bytes()))
        && !bytes
            .get(pos + keyword.len())
            .is_some_and(|&b| is_ident_byte(b))
}

/// The identifier at `pos`: its text and end.
pub(crate) fn ident(text: &str, pos: usize) -> Option<(&str, usize)> {
    let bytes = text.as_bytes();
    let first = *bytes.get(pos)?;
    if !is_ident_byte(first) || first.is_ascii_digit() {
        return None;
    }
    let end = bytes[pos..]
        .iter()
        .position(|&b| !is_ident_byte(b))
        .map_or(bytes.len(), |i| pos + i);
    text.get(pos..end).map(|word| (word, end))
}

/// A dotted name at `pos` (`a.b.c`, blanks allowed around the dots): the name without blanks
/// and its end.
pub(crate) fn dotted(text: &str, pos: usize) -> Option<(String, usize)> {
    let bytes = text.as_bytes();
    let (first, mut end) = ident(text, pos)?;
    let mut name = first.to_string();
    loop {
        let dot = skip_blank(bytes, end, false);
        if bytes.get(dot) != Some(&b'.') {
            return Some((name, end));
        }
        let next = skip_blank(bytes, dot + 1, false);
        let Some((part, part_end)) = ident(text, next) else {
            return Some((name, end));
        };
        name.push('.');
        name.push_str(part);
        end = part_end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covers_modules_and_submodules_only() {
        assert!(covers("os", "os", '.'));
        assert!(covers("os", "os.path", '.'));
        assert!(covers(" os ", "os.path", '.'));
        assert!(!covers("os", "osmosis", '.'));
        assert!(!covers("os.path", "os", '.'));
        assert!(!covers("", "os", '.'));
        assert!(covers("net", "net/http", '/'));
        assert!(!covers("net", "network", '/'));
    }

    #[test]
    fn names_and_blanks() {
        let text = "os . path \\\n .join(x)";
        assert_eq!(dotted(text, 0), Some(("os.path.join".to_string(), 18)));
        assert_eq!(ident("9a", 0), None);
        assert_eq!(ident("héllo x", 0), Some(("héllo", 6)));
        assert!(keyword_at(b"as x", 0, "as"));
        assert!(!keyword_at(b"assert", 0, "as"));
        assert_eq!(skip_blank(b" \t\\\n\nx", 0, false), 4);
        assert_eq!(skip_blank(b" \t\\\n\nx", 0, true), 5);
    }
}
