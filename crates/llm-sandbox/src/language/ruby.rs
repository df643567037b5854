//! Ruby.

use std::sync::LazyLock;

use regex::Regex;

use super::detect::{covers, lines, literals_after};
use super::handler::{argv, LanguageHandler, RunContext, Toolchain};
use super::source::{MaskedSource, Syntax};
use crate::error::Result;

/// Ruby (`ruby main.rb`); gems installed into the workdir.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ruby;

/// Where gems are installed, relative to the workdir.
const GEMS_DIR: &str = ".llm-sandbox/gems";

impl LanguageHandler for Ruby {
    fn name(&self) -> &str {
        "ruby"
    }
    fn aliases(&self) -> &[&str] {
        &["rb"]
    }
    fn file_extension(&self) -> &str {
        "rb"
    }
    fn toolchain(&self) -> Vec<Toolchain> {
        vec![Toolchain {
            binary: "ruby",
            package: "ruby",
        }]
    }
    fn run_command(&self, ctx: &RunContext) -> Vec<String> {
        argv(["ruby", &ctx.source_path])
    }
    fn environment(&self, workdir: &str) -> Vec<(String, String)> {
        vec![("GEM_HOME".into(), format!("{workdir}/{GEMS_DIR}"))]
    }
    fn install_command(&self, libraries: &[String], workdir: &str) -> Result<Vec<String>> {
        let target = format!("{workdir}/{GEMS_DIR}");
        // No configuration file; plugins load only from GEM_HOME/GEM_PATH and the home
        // directory, which the installer's environment leaves out of the code's reach.
        let mut command = argv([
            "gem",
            "install",
            "--config-file",
            "/dev/null",
            "--no-document",
            "--install-dir",
            &target,
            "--",
        ]);
        command.extend(libraries.iter().cloned());
        Ok(command)
    }
    fn package_index_hosts(&self) -> Vec<String> {
        vec![
            "rubygems.org".into(),
            "index.rubygems.org".into(),
            "rubygems.global.ssl.fastly.net".into(),
        ]
    }
    fn syntax(&self) -> Syntax {
        Syntax::Ruby
    }
    /// `require`, `require_relative`, `Kernel.require` and `autoload` with a literal feature name
    /// (`.rb`/`.so` optional); a feature covers the ones below it (`net` covers `net/http`).
    fn module_uses(&self, source: &MaskedSource, module: &str) -> Vec<usize> {
        let module = feature(module);
        lines(
            literals_after(source, &REQUIRE)
                .filter(|literal| covers(module, feature(&literal.value), '/'))
                .map(|literal| literal.line)
                .collect(),
        )
    }
}

/// `require 'm'`, `require("m")`, `require_relative 'm'`, `Kernel.require 'm'`,
/// `autoload :M, 'm'` (also with `%q(m)`); `load` runs a file and is not a module.
static REQUIRE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?:\b(?:require|require_relative)\b\s*\(?\s*|\bautoload\b\s*\(?\s*:\w+\s*,\s*)(?:['"]|%[qQ]?[(\[{<|!/])"#,
    )
    .expect("valid regex")
});

/// A feature name without a `.rb`/`.so`/`.bundle` extension.
fn feature(name: &str) -> &str {
    let name = name.trim();
    [".rb", ".so", ".bundle"]
        .iter()
        .find_map(|extension| name.strip_suffix(extension))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(code: &str, module: &str) -> Vec<usize> {
        Ruby.module_uses(&MaskedSource::new(code, Ruby.syntax()), module)
    }

    #[test]
    fn requires() {
        assert_eq!(uses("require 'socket'", "socket"), [1]);
        assert_eq!(uses("x = 1\nrequire \"open3\"", "open3"), [2]);
        assert_eq!(uses("require('socket')", "socket"), [1]);
        assert_eq!(uses("require_relative 'socket'", "socket"), [1]);
        assert_eq!(uses("Kernel.require('socket')", "socket"), [1]);
        assert_eq!(uses("Kernel.require 'socket'", "socket"), [1]);
        assert_eq!(uses("require 'socket.so'", "socket"), [1]);
        assert_eq!(uses("require 'net/http'", "net/http"), [1]);
        assert_eq!(uses("require 'net/http'", "net"), [1]);
        assert_eq!(uses("require %q(socket)", "socket"), [1]);
        assert_eq!(uses("autoload :Socket, 'socket'", "socket"), [1]);
        assert_eq!(uses("x = \"#{require 'socket'}\"", "socket"), [1]);
    }

    #[test]
    fn comments_strings_load_and_similar_names_do_not_count() {
        for code in [
            "load 'socket.rb'",
            "# require 'socket'",
            "=begin\nrequire 'socket'\n=end",
            "puts \"require 'socket'\"",
            "puts 'socket'",
            "require 'socketry'",
            "require 'my/socket'",
            "required 'socket'",
            "s = <<~EOS\n  require 'socket'\nEOS",
        ] {
            assert_eq!(uses(code, "socket"), Vec::<usize>::new(), "{code:?}");
        }
    }
}
