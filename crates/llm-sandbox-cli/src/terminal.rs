//! Output bound for a terminal: the program's bytes with their control characters made
//! visible, so that sandboxed code cannot drive the caller's terminal (set the clipboard with
//! OSC 52, retitle the window, clear the screen, forge lines, ask for answers typed back).

/// `bytes` with every C0 control but `\n`, `\t` and `\r`, DEL, every C1 control and every byte
/// that is not UTF-8 shown as an escape (`\x1b`, `\u{9b}`); the rest unchanged.
pub fn visible(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\n' | '\t' | '\r' => out.push(c as u8),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    out.extend(format!("\\x{:02x}", c as u32).bytes())
                }
                c if (0x80..0xa0).contains(&(c as u32)) => {
                    out.extend(format!("\\u{{{:x}}}", c as u32).bytes())
                }
                c => out.extend(c.encode_utf8(&mut [0; 4]).bytes()),
            }
        }
        for byte in chunk.invalid() {
            out.extend(format!("\\x{byte:02x}").bytes());
        }
    }
    out
}

/// A name chosen by sandboxed code (a path, a plot), quoted with every control escaped, for
/// the CLI's own messages.
pub fn quoted(name: &str) -> String {
    format!("{name:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_become_visible_and_text_stays() {
        let hostile = b"ok\ttab\r\n\x1b]52;c;ZXZpbA==\x07\x1b[2J caf\xc3\xa9 \xc2\x9b31m \xff\x7f";
        let shown = String::from_utf8(visible(hostile)).unwrap();
        assert_eq!(
            shown,
            "ok\ttab\r\n\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J caf\u{e9} \\u{9b}31m \\xff\\x7f"
        );
        assert_eq!(quoted("a\x1b[31mb\nc"), r#""a\u{1b}[31mb\nc""#);
    }
}
