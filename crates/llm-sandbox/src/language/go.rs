//! Go, built with the go tool.

use std::sync::LazyLock;

use regex::Regex;

use super::detect::{covers, ident, lines, skip_blank};
use super::handler::{argv, LanguageHandler, RunContext, Toolchain};
use super::source::{MaskedSource, StringLiteral, Syntax};

/// Go (`go build` then the binary); module downloads are off.
#[derive(Debug, Clone, Copy, Default)]
pub struct Go;

impl LanguageHandler for Go {
    fn name(&self) -> &str {
        "go"
    }
    fn aliases(&self) -> &[&str] {
        &["golang"]
    }
    fn file_extension(&self) -> &str {
        "go"
    }
    fn toolchain(&self) -> Vec<Toolchain> {
        vec![Toolchain {
            binary: "go",
            package: "golang-go",
        }]
    }
    fn compile_command(&self, ctx: &RunContext) -> Option<Vec<String>> {
        let output = format!("{}/main", ctx.build_dir);
        Some(argv(["go", "build", "-o", &output, &ctx.source_path]))
    }
    fn run_command(&self, ctx: &RunContext) -> Vec<String> {
        vec![format!("{}/main", ctx.build_dir)]
    }
    fn environment(&self, workdir: &str) -> Vec<(String, String)> {
        vec![
            ("GOCACHE".into(), format!("{workdir}/.llm-sandbox/go-cache")),
            ("GOPATH".into(), format!("{workdir}/.llm-sandbox/go")),
            ("GOTOOLCHAIN".into(), "local".into()),
            ("GOPROXY".into(), "off".into()),
            ("GO111MODULE".into(), "off".into()),
            ("CGO_ENABLED".into(), "0".into()),
        ]
    }
    fn syntax(&self) -> Syntax {
        Syntax::Go
    }
    /// `import "p"`, `import x "p"` and `import ( … )` blocks with `x`, `_` and `.` aliases; a
    /// path covers the paths below it (`net` covers `net/http`).
    fn module_uses(&self, source: &MaskedSource, module: &str) -> Vec<usize> {
        lines(
            imports(source)
                .into_iter()
                .filter(|literal| covers(module, literal.value.trim(), '/'))
                .map(|literal| literal.line)
                .collect(),
        )
    }
}

static IMPORT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bimport\b").expect("valid regex"));

/// Every imported package path, with the string literal that names it.
fn imports(source: &MaskedSource) -> Vec<&StringLiteral> {
    let text = source.masked.as_str();
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    for m in IMPORT.find_iter(text) {
        let mut pos = skip_blank(bytes, m.end(), true);
        if bytes.get(pos) == Some(&b'(') {
            pos += 1;
            loop {
                while let Some(b' ' | b'\t' | b'\r' | b'\n' | b';') = bytes.get(pos) {
                    pos += 1;
                }
                match import_spec(source, pos) {
                    Some((literal, next)) => {
                        found.push(literal);
                        pos = next;
                    }
                    None => break,
                }
            }
        } else if let Some((literal, _)) = import_spec(source, pos) {
            found.push(literal);
        }
    }
    found
}

/// One import spec at `pos`: an optional alias (`x`, `_` or `.`) and the quoted path; the
/// literal and the offset just past it.
fn import_spec(source: &MaskedSource, mut pos: usize) -> Option<(&StringLiteral, usize)> {
    let text = source.masked.as_str();
    let bytes = text.as_bytes();
    if bytes.get(pos) == Some(&b'.') {
        pos = skip_blank(bytes, pos + 1, false);
    } else if let Some((_, end)) = ident(text, pos) {
        pos = skip_blank(bytes, end, false);
    }
    if !matches!(bytes.get(pos), Some(b'"' | b'`')) {
        return None;
    }
    let literal = source.string_at(pos + 1)?;
    Some((literal, literal.end + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(code: &str, module: &str) -> Vec<usize> {
        Go.module_uses(&MaskedSource::new(code, Go.syntax()), module)
    }

    #[test]
    fn single_and_block_imports() {
        assert_eq!(uses("package main\nimport \"os/exec\"", "os/exec"), [2]);
        assert_eq!(uses("import `os/exec`", "os/exec"), [1]);
        assert_eq!(uses("import x \"os/exec\"", "os/exec"), [1]);
        let block = "package main\n\nimport (\n\t\"fmt\"\n\tx \"os/exec\"\n\t. \"net\"\n\t_ \"net/http\"\n)\n";
        assert_eq!(uses(block, "os/exec"), [5]);
        assert_eq!(uses(block, "net"), [6, 7]);
        assert_eq!(uses(block, "net/http"), [7]);
        assert_eq!(uses(block, "fmt"), [4]);
        assert_eq!(uses("import (\"fmt\"; \"os/exec\")", "os/exec"), [1]);
        assert_eq!(
            uses(
                "import (\n\t\"fmt\" // fmt\n\t/* x */ \"os/exec\"\n)",
                "os/exec"
            ),
            [3]
        );
        assert_eq!(uses("import \"os/exec\"", "os"), [1]);
    }

    #[test]
    fn comments_strings_and_similar_names_do_not_count() {
        for code in [
            "// import \"os/exec\"",
            "/* import (\n\"os/exec\"\n) */",
            "var s = \"import \\\"os/exec\\\"\"",
            "var s = `import \"os/exec\"`",
            "import \"os/execute\"",
            "import \"myos/exec\"",
            "import \"fmt\"\nvar p = \"os/exec\"",
        ] {
            assert_eq!(uses(code, "os/exec"), Vec::<usize>::new(), "{code:?}");
        }
        assert_eq!(uses("import \"network\"", "net"), Vec::<usize>::new());
    }
}
