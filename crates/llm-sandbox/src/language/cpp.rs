//! C++, compiled with g++.

use std::sync::LazyLock;

use regex::Regex;

use super::detect::lines;
use super::handler::{argv, LanguageHandler, RunContext, Toolchain};
use super::source::{MaskedSource, Syntax};

/// C++17 (`g++ -std=c++17` then the binary); no package manager.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpp;

impl LanguageHandler for Cpp {
    fn name(&self) -> &str {
        "cpp"
    }
    fn aliases(&self) -> &[&str] {
        &["c++", "cxx"]
    }
    fn file_extension(&self) -> &str {
        "cpp"
    }
    fn toolchain(&self) -> Vec<Toolchain> {
        vec![Toolchain {
            binary: "g++",
            package: "g++",
        }]
    }
    fn compile_command(&self, ctx: &RunContext) -> Option<Vec<String>> {
        let output = format!("{}/main", ctx.build_dir);
        Some(argv([
            "g++",
            "-std=c++17",
            "-O2",
            "-o",
            &output,
            &ctx.source_path,
        ]))
    }
    fn run_command(&self, ctx: &RunContext) -> Vec<String> {
        vec![format!("{}/main", ctx.build_dir)]
    }
    fn syntax(&self) -> Syntax {
        Syntax::CLike
    }
    /// `#include <h>` and `#include "h"` (any spacing around `#`); a module names a header with
    /// or without its extension (`unistd.h` or `unistd`), and `cX` is the same as `X.h`.
    fn module_uses(&self, source: &MaskedSource, module: &str) -> Vec<usize> {
        let masked = source.masked.as_str();
        let mut found = Vec::new();
        for caps in INCLUDE.captures_iter(masked) {
            let Some(open) = caps.get(1) else { continue };
            let header = if open.as_str() == "<" {
                let rest = &masked[open.end()..];
                match rest.find(['>', '\n']) {
                    Some(close) if rest[close..].starts_with('>') => Some(&rest[..close]),
                    _ => None,
                }
            } else {
                source
                    .string_at(open.end())
                    .map(|literal| literal.value.as_str())
            };
            if header.is_some_and(|header| header_matches(module, header)) {
                found.push(source.line_of(open.start()));
            }
        }
        lines(found)
    }
}

/// `#include <h>` / `# include "h"` (also `#include_next` and `#import`) at the start of a line.
static INCLUDE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?m)^[ \t]*#[ \t]*(?:include_next|include|import)[ \t]*([<"])"#)
        .expect("valid regex")
});

/// A header name without its extension (`unistd.h` → `unistd`).
fn stem(header: &str) -> (&str, bool) {
    for extension in [".h", ".hpp", ".hh", ".hxx", ".h++"] {
        if let Some(stem) = header.strip_suffix(extension) {
            return (stem, true);
        }
    }
    (header, false)
}

/// Whether `header` is `module`, with or without the extension; `<cstdlib>` and `stdlib.h`
/// name the same header.
fn header_matches(module: &str, header: &str) -> bool {
    let (module, header) = (module.trim(), header.trim());
    if module.is_empty() {
        return false;
    }
    let ((m, m_ext), (h, h_ext)) = (stem(module), stem(header));
    m == h
        || (!h_ext && m_ext && h.strip_prefix('c') == Some(m))
        || (!m_ext && h_ext && m.strip_prefix('c') == Some(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(code: &str, module: &str) -> Vec<usize> {
        Cpp.module_uses(&MaskedSource::new(code, Cpp.syntax()), module)
    }

    #[test]
    fn includes() {
        assert_eq!(uses("#include <cstdlib>", "cstdlib"), [1]);
        assert_eq!(
            uses("#include <iostream>\n# include \"unistd.h\"", "unistd.h"),
            [2]
        );
        assert_eq!(uses("# include \"unistd.h\"", "unistd"), [1]);
        assert_eq!(uses("  #  include<unistd.h>", "unistd"), [1]);
        assert_eq!(uses("#include <sys/socket.h>", "sys/socket.h"), [1]);
        assert_eq!(uses("#include <sys/socket.h>", "sys/socket"), [1]);
        assert_eq!(uses("#include <cstdlib>", "stdlib.h"), [1]);
        assert_eq!(uses("#include <stdlib.h>", "cstdlib"), [1]);
        assert_eq!(uses("/* x */ #include <cstdlib>", "cstdlib"), [1]);
        assert_eq!(uses("#include_next <cstdlib>", "cstdlib"), [1]);
    }

    #[test]
    fn comments_strings_and_similar_names_do_not_count() {
        for code in [
            "// #include <unistd.h>",
            "/*\n#include <unistd.h>\n*/",
            "const char *s = \"#include <unistd.h>\";",
            "#include <unistd_ext.h>",
            "#include <sys/unistd.h>",
            "int x; #include <unistd.h>",
            "#include <cunistd_x>",
        ] {
            assert_eq!(uses(code, "unistd.h"), Vec::<usize>::new(), "{code:?}");
        }
        assert_eq!(uses("#include <chrono>", "hrono"), Vec::<usize>::new());
        assert_eq!(
            uses("#include <socket.h>", "sys/socket.h"),
            Vec::<usize>::new()
        );
    }
}
