//! What a language is to a session: the [`LanguageHandler`] trait and the contexts it is given.

use std::fmt;

use super::source::{MaskedSource, Syntax};
use crate::error::{Error, Result};

/// Where one run's files live inside the sandbox, and what the handler may tune for it.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// Absolute path of the source file inside the sandbox.
    pub source_path: String,
    /// A private, writable directory for build outputs of this run.
    pub build_dir: String,
    /// The session's working directory (where packages are installed).
    pub workdir: String,
    /// The memory limit of the sandbox in bytes, if any (e.g. to size a JVM heap).
    pub memory_limit: Option<u64>,
}

/// Where one run's plot capture happens inside the sandbox.
#[derive(Debug, Clone)]
pub struct PlotContext {
    /// The run's private directory; capture files go below it.
    pub run_dir: String,
    /// The directory captured plots must be written to, as `<n>.<format>` with `<n>.json`
    /// (`{"format", "width", "height", "dpi"}`, each value may be null) beside each.
    pub plots_dir: String,
    /// The format figures are captured in when the program shows them (e.g. `png`).
    pub format: String,
}

/// How a language captures plots for one run: files placed in the sandbox and environment
/// variables set for the run.
#[derive(Debug, Clone, Default)]
pub struct PlotCapture {
    /// Files to create, as (path relative to [`PlotContext::run_dir`], content).
    pub files: Vec<(String, Vec<u8>)>,
    /// Environment variables to set (replacing any of the same name).
    pub env: Vec<(String, String)>,
}

/// A program a language needs, and the Debian package that provides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    /// The binary looked up on the sandbox's PATH, e.g. `python3`.
    pub binary: &'static str,
    /// The package to install when it is missing, e.g. `python3`.
    pub package: &'static str,
}

/// How one language is compiled, run and given packages.
///
/// Implement this to add a language; register it with [`LanguageRegistry::register`] and use it
/// by name in a session.
pub trait LanguageHandler: Send + Sync + fmt::Debug {
    /// The canonical name, e.g. `python`.
    fn name(&self) -> &str;

    /// Other names users may give, e.g. `py`.
    fn aliases(&self) -> &[&str] {
        &[]
    }

    /// The source file extension without the dot, e.g. `py`.
    fn file_extension(&self) -> &str;

    /// The name of the source file written for a run.
    fn file_name(&self) -> String {
        format!("main.{}", self.file_extension())
    }

    /// The programs this language needs on the host (native) or in the image.
    fn toolchain(&self) -> Vec<Toolchain>;

    /// The compile step, if the language has one. A non-zero exit ends the run with its output.
    fn compile_command(&self, _ctx: &RunContext) -> Option<Vec<String>> {
        None
    }

    /// The command that runs the program.
    fn run_command(&self, ctx: &RunContext) -> Vec<String>;

    /// Environment variables every run of this language gets (e.g. where packages live).
    fn environment(&self, _workdir: &str) -> Vec<(String, String)> {
        Vec::new()
    }

    /// The command that installs `libraries` into the session's writable `workdir`.
    ///
    /// The names have already passed [`validate_library_name`]. The default refuses, for
    /// languages without a package manager.
    fn install_command(&self, _libraries: &[String], _workdir: &str) -> Result<Vec<String>> {
        Err(Error::invalid(format!(
            "{} has no package manager support; bring dependencies into the source or the image",
            self.name()
        )))
    }

    /// Environment variables of the installer (and only it), given its fresh home directory:
    /// what pins its configuration so that files the code wrote cannot steer it. The session
    /// adds PATH, HOME, USER, LANG and TMPDIR; nothing of the runs' environment is passed.
    fn install_environment(&self, _home: &str) -> Vec<(String, String)> {
        Vec::new()
    }

    /// Files under the writable `workdir` that the installer would read as configuration
    /// whatever its options say (e.g. npm's project `.npmrc`); removed before each install.
    fn installer_config_files(&self, _workdir: &str) -> Vec<String> {
        Vec::new()
    }

    /// The hosts the installer downloads from (HTTPS): with `allow_install_network`, the only
    /// ones it can reach on backends that confine installs to their package index.
    fn package_index_hosts(&self) -> Vec<String> {
        Vec::new()
    }

    /// The image container backends use for this language unless the session names one (the
    /// native backend runs the host's toolchains and uses none).
    fn default_image(&self) -> String {
        format!("llm-sandbox/{}:latest", self.name())
    }

    /// The lexical family of the language's source: how its comments and string literals look.
    ///
    /// The security check lexes code with it into a [`MaskedSource`] before matching patterns,
    /// so that comments and string contents never match. The default is [`Syntax::CLike`].
    fn syntax(&self) -> Syntax {
        Syntax::CLike
    }

    /// The 1-based lines of `source` that import or load `module`, sorted, without duplicates.
    ///
    /// `source` is the code lexed with [`syntax`](Self::syntax). A use is whatever makes the
    /// module available in this language (an import, `require`, `#include`, a dynamic import
    /// taking the name as a string literal); a module also covers its submodules (`os` covers
    /// `os.path`). Comments and unrelated string literals never count. Names built at run time
    /// cannot be seen: this is an advisory check, the sandbox is the boundary.
    ///
    /// The default finds nothing: the language cannot detect modules, so restricted modules
    /// never match its code.
    fn module_uses(&self, _source: &MaskedSource, _module: &str) -> Vec<usize> {
        Vec::new()
    }

    /// How this language captures plots without changing the program, given the run's
    /// environment; `None` (the default) when it cannot, and plotting is refused for it.
    fn plot_capture(&self, _ctx: &PlotContext, _env: &[(String, String)]) -> Option<PlotCapture> {
        None
    }
}

/// Refuses package names that could be read as options or carry shell syntax.
///
/// Names are passed as argv (never through a shell); this also stops option injection such as
/// `--index-url`.
pub fn validate_library_name(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "._-[],=<>!~@/:+".contains(c);
    if name.is_empty() || name.starts_with('-') || !name.chars().all(allowed) {
        return Err(Error::invalid(format!(
            "`{name}` is not a valid package name (letters, digits and ._-[],=<>!~@/:+ only, not starting with `-`)"
        )));
    }
    Ok(())
}

/// An argv of string literals.
pub(crate) fn argv<const N: usize>(parts: [&str; N]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_names_that_look_like_options_or_shell_are_refused() {
        for bad in [
            "--index-url=http://x",
            "-e",
            "a b",
            "x;rm",
            "$(id)",
            "a|b",
            "",
        ] {
            assert!(validate_library_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in [
            "numpy",
            "pandas==2.1.0",
            "requests[socks]>=2",
            "@types/node",
            "lodash@4",
        ] {
            validate_library_name(good).unwrap();
        }
    }
}
