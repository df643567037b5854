//! A static security policy: patterns and restricted modules checked in code before it runs.
//!
//! The sandbox (namespaces, seccomp, cgroups, or a container) is the security boundary. This
//! check is advisory: it catches the obvious (`os.system(…)`, `import socket`,
//! `require('child_process')`) so a session can refuse or flag code early, with a line number and
//! a reason. It cannot see names built at run time (`__import__("o" + "s")`, `getattr`), so it
//! never replaces isolation.
//!
//! A [`SecurityPolicy`] holds a severity threshold, regular-expression [`SecurityPattern`]s and
//! [`RestrictedModule`]s. [`SecurityPolicy::check`] lexes the code for its language (see
//! [`source`]): patterns run on the code with comments removed and string contents blanked, so
//! `print("os.system")` and `# os.system` never match, and line numbers stay exact. Module uses
//! are found by the language handler ([`LanguageHandler::module_uses`]), which knows the
//! language's import forms.
//!
//! ```
//! use llm_sandbox::language::Python;
//! use llm_sandbox::security::SecurityPolicy;
//!
//! let policy = SecurityPolicy::preset("production").unwrap();
//! let (safe, violations) = policy.is_safe(&Python, "import os\nos.system('id')\n");
//! assert!(!safe);
//! assert_eq!(violations[0].line, 1);
//! ```

use std::str::FromStr;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::language::LanguageHandler;

pub use crate::language::source;
pub use source::{MaskedSource, StringLiteral, Syntax};
pub use violation::{SecurityIssueSeverity, Violation};

pub(crate) mod violation;

use violation::not_a_severity;

impl FromStr for SecurityIssueSeverity {
    type Err = Error;

    /// Parses a level name, case-insensitively.
    fn from_str(s: &str) -> Result<Self> {
        Self::named(s).ok_or_else(|| Error::invalid(not_a_severity(s)))
    }
}

/// A regular expression that flags code, with what it means and how serious it is.
///
/// The expression is compiled once, in multi-line mode (`^` and `$` match at line breaks), and
/// matched against code whose comments and string contents are blanked. Empty matches are
/// ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "PatternSpec", into = "PatternSpec")]
pub struct SecurityPattern {
    pattern: String,
    description: String,
    severity: SecurityIssueSeverity,
    regex: Regex,
}

/// The serialized form of a [`SecurityPattern`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternSpec {
    pattern: String,
    #[serde(default)]
    description: String,
    severity: SecurityIssueSeverity,
}

impl SecurityPattern {
    /// Compiles `pattern`; an invalid regular expression is [`Error::InvalidArgument`] naming
    /// the pattern and what is wrong with it.
    pub fn new(
        pattern: impl Into<String>,
        description: impl Into<String>,
        severity: SecurityIssueSeverity,
    ) -> Result<Self> {
        Self::try_from(PatternSpec {
            pattern: pattern.into(),
            description: description.into(),
            severity,
        })
        .map_err(Error::invalid)
    }

    /// The regular expression as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// What a match means.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// How serious a match is.
    pub fn severity(&self) -> SecurityIssueSeverity {
        self.severity
    }

    /// The compiled expression.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

impl TryFrom<PatternSpec> for SecurityPattern {
    type Error = String;

    fn try_from(spec: PatternSpec) -> std::result::Result<Self, String> {
        let regex = regex::RegexBuilder::new(&spec.pattern)
            .multi_line(true)
            .build()
            .map_err(|e| {
                let reason = match &e {
                    // The syntax error's text repeats the pattern over several lines; its last
                    // line says what is wrong.
                    regex::Error::Syntax(text) => text
                        .lines()
                        .rev()
                        .find(|line| !line.trim().is_empty())
                        .map(|line| line.trim().trim_start_matches("error: ").to_string())
                        .unwrap_or_else(|| text.clone()),
                    other => other.to_string(),
                };
                format!(
                    "security pattern `{}` is not a valid regular expression: {reason}",
                    spec.pattern
                )
            })?;
        Ok(SecurityPattern {
            pattern: spec.pattern,
            description: spec.description,
            severity: spec.severity,
            regex,
        })
    }
}

impl From<SecurityPattern> for PatternSpec {
    fn from(pattern: SecurityPattern) -> Self {
        PatternSpec {
            pattern: pattern.pattern,
            description: pattern.description,
            severity: pattern.severity,
        }
    }
}

impl PartialEq for SecurityPattern {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
            && self.description == other.description
            && self.severity == other.severity
    }
}

impl Eq for SecurityPattern {}

/// A module (package, header, feature) whose use the policy flags.
///
/// The name is in the language's own terms: `os` or `os.path` (Python), `child_process` (Node),
/// `java.lang.Runtime` or `java.io` (Java), `unistd.h` (C++), `os/exec` (Go), `open3` (Ruby).
/// A module also covers its submodules. One policy may list names of several languages: each
/// language only ever matches its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestrictedModule {
    /// The module's name.
    pub name: String,
    /// Why it is restricted.
    #[serde(default)]
    pub description: String,
    /// How serious a use is.
    pub severity: SecurityIssueSeverity,
}

impl RestrictedModule {
    /// A restricted module.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        severity: SecurityIssueSeverity,
    ) -> Self {
        RestrictedModule {
            name: name.into(),
            description: description.into(),
            severity,
        }
    }
}

/// What code may not do: patterns and restricted modules, and the severity from which a finding
/// counts.
///
/// A finding counts when its severity is at least [`severity_threshold`](Self::severity_threshold):
/// with `high` only high findings count; with `safe` every pattern and module counts, even those
/// marked `safe`.
///
/// In TOML (unknown keys are refused; `severity_threshold` defaults to `medium`, descriptions to
/// empty):
///
/// ```toml
/// severity_threshold = "medium"
///
/// [[patterns]]
/// pattern = '\bos\s*\.\s*system\s*\('
/// description = "runs a shell command"
/// severity = "high"
///
/// [[restricted_modules]]
/// name = "socket"
/// description = "network access"
/// severity = "medium"
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityPolicy {
    /// Findings below this severity are ignored.
    #[serde(default = "default_threshold")]
    pub severity_threshold: SecurityIssueSeverity,
    /// Regular expressions that flag code.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<SecurityPattern>,
    /// Modules whose use is flagged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restricted_modules: Vec<RestrictedModule>,
}

fn default_threshold() -> SecurityIssueSeverity {
    SecurityIssueSeverity::Medium
}

impl Default for SecurityPolicy {
    /// An empty policy with a `medium` threshold.
    fn default() -> Self {
        Self::new(default_threshold())
    }
}

impl SecurityPolicy {
    /// The names [`preset`](Self::preset) knows.
    pub const PRESETS: &'static [&'static str] = &[
        "minimal",
        "development",
        "educational",
        "data_science",
        "web_scraping",
        "production",
        "strict",
    ];

    /// An empty policy with this threshold.
    pub fn new(severity_threshold: SecurityIssueSeverity) -> Self {
        SecurityPolicy {
            severity_threshold,
            patterns: Vec::new(),
            restricted_modules: Vec::new(),
        }
    }

    /// Adds a pattern.
    pub fn add_pattern(&mut self, pattern: SecurityPattern) {
        self.patterns.push(pattern);
    }

    /// Adds a restricted module.
    pub fn add_restricted_module(&mut self, module: RestrictedModule) {
        self.restricted_modules.push(module);
    }

    /// Reads a policy from TOML (see [`SecurityPolicy`] for the format).
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            let place = e
                .span()
                .map(|span| {
                    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
                    format!(" (line {line})")
                })
                .unwrap_or_default();
            Error::invalid(format!(
                "security policy TOML{place}: {}",
                e.message().trim()
            ))
        })
    }

    /// Writes the policy as TOML that [`from_toml`](Self::from_toml) reads back.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self)
            .map_err(|e| Error::invalid(format!("cannot write the security policy as TOML: {e}")))
    }

    /// A built-in policy. Names are case-insensitive and `-` may stand for `_`.
    ///
    /// Module names cover each language's equivalents (Python, JavaScript, Java, C++, Go,
    /// Ruby); patterns are language-neutral. "Process spawning" is the shell (`os.system`,
    /// `system()`, `popen`, `%x()`), process replacement (`os.exec*`, `os.spawn*`, `os.fork`,
    /// `fork`/`exec*`), and the process modules (`subprocess`, `pty`, `child_process`,
    /// `cluster`, `java.lang.Runtime`, `java.lang.ProcessBuilder`, `os/exec`, `syscall`,
    /// `open3`, `unistd.h`, …) with `subprocess.*` calls and Ruby `spawn`/`exec`.
    ///
    /// | preset | threshold | blocks |
    /// |---|---|---|
    /// | `minimal` | high | shell commands only (`os.system`, `system()`, `popen`, `%x()`) |
    /// | `development` | high | shell commands, process replacement (`os.exec*`, `os.fork`, `fork`/`exec*`), recursive deletion (`shutil.rmtree`, `rm_rf`, `RemoveAll`, `remove_all`) |
    /// | `educational` | low | process spawning, network (modules and `fetch`), FFI (`ctypes`, `cffi`, `fiddle`, `unsafe`, `dlfcn.h`), dynamic code (`eval(`, `exec(`, `__import__`, `importlib`, `vm`, reflection), file deletion |
    /// | `data_science` | medium | process spawning and network; allows `numpy`, `pandas`, `os`, files, `multiprocessing` |
    /// | `web_scraping` | medium | process spawning, FFI, file deletion; allows network (`requests`, `urllib`, `http`, `socket`, `net`, `fetch`, …) |
    /// | `production` | medium | everything in `educational` plus system modules (`os`, `shutil`, `fs`, `java.nio.file`, `java.io.File`, `fileutils`, `filesystem`) |
    /// | `strict` | low | everything in `production` plus introspection (`__builtins__`, `__subclasses__`, `compile(`, `globals(`, `process.binding`) and `multiprocessing`, `pickle`, `marshal`, `signal`, `worker_threads`, `sun.misc`, … |
    pub fn preset(name: &str) -> Result<Self> {
        let wanted = name.trim().to_ascii_lowercase().replace('-', "_");
        use presets::*;
        use SecurityIssueSeverity::{High, Low, Medium};
        let (threshold, categories): (SecurityIssueSeverity, &[&Category]) = match wanted.as_str() {
            "minimal" => (High, &[&SHELL]),
            "development" => (High, &[&SHELL, &FORK_EXEC, &RECURSIVE_DELETION]),
            "educational" => (
                Low,
                &[
                    &SHELL,
                    &FORK_EXEC,
                    &SPAWN,
                    &NETWORK,
                    &FFI,
                    &DYNAMIC_CODE,
                    &FILE_DELETION,
                    &RECURSIVE_DELETION,
                ],
            ),
            "data_science" => (Medium, &[&SHELL, &FORK_EXEC, &SPAWN, &NETWORK]),
            "web_scraping" => (
                Medium,
                &[
                    &SHELL,
                    &FORK_EXEC,
                    &SPAWN,
                    &FFI,
                    &FILE_DELETION,
                    &RECURSIVE_DELETION,
                ],
            ),
            "production" => (
                Medium,
                &[
                    &SHELL,
                    &FORK_EXEC,
                    &SPAWN,
                    &NETWORK,
                    &FFI,
                    &DYNAMIC_CODE,
                    &FILE_DELETION,
                    &RECURSIVE_DELETION,
                    &SYSTEM,
                ],
            ),
            "strict" => (
                Low,
                &[
                    &SHELL,
                    &FORK_EXEC,
                    &SPAWN,
                    &NETWORK,
                    &FFI,
                    &DYNAMIC_CODE,
                    &FILE_DELETION,
                    &RECURSIVE_DELETION,
                    &SYSTEM,
                    &INTROSPECTION,
                ],
            ),
            _ => {
                return Err(Error::invalid(format!(
                    "`{name}` is not a security preset; use one of {}",
                    Self::PRESETS.join(", ")
                )))
            }
        };
        let mut policy = SecurityPolicy::new(threshold);
        for category in categories {
            category.add_to(&mut policy);
        }
        Ok(policy)
    }

    /// A preset by name, else a TOML policy file at that path.
    pub fn load(name_or_path: &str) -> Result<Self> {
        if let Ok(policy) = Self::preset(name_or_path) {
            return Ok(policy);
        }
        let path = std::path::Path::new(name_or_path);
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_toml(&text).map_err(|e| match e {
                Error::InvalidArgument(message) => {
                    Error::invalid(format!("{}: {message}", path.display()))
                }
                other => other,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::invalid(format!(
                "`{name_or_path}` is neither a security preset ({}) nor an existing policy file",
                Self::PRESETS.join(", ")
            ))),
            Err(e) => Err(Error::io(
                format!("reading the security policy {}", path.display()),
                e,
            )),
        }
    }

    /// Every pattern match and restricted-module use in `code` whose severity is at least the
    /// threshold, sorted by line (then patterns before modules, in policy order).
    ///
    /// Patterns see `code` lexed for `language` (comments removed, string contents blanked);
    /// modules are found by [`LanguageHandler::module_uses`]. The policy is not changed.
    pub fn check(&self, language: &dyn LanguageHandler, code: &str) -> Vec<Violation> {
        let source = MaskedSource::new(code, language.syntax());
        let counts = |severity: SecurityIssueSeverity| severity >= self.severity_threshold;
        let mut violations = Vec::new();
        for pattern in self.patterns.iter().filter(|p| counts(p.severity)) {
            for m in pattern.regex.find_iter(&source.masked) {
                // Patterns often start with a context character (`[^.\w]eval`) that may be the
                // previous line's newline: the finding is where the match's text starts.
                let text = m.as_str();
                let blank = text.len() - text.trim_start().len();
                if blank == text.len() {
                    continue;
                }
                let start = m.start() + blank;
                violations.push(Violation {
                    line: source.line_of(start),
                    description: pattern.description.clone(),
                    severity: pattern.severity,
                    matched: snippet(code, start, m.end()).trim_end().to_string(),
                });
            }
        }
        for module in self
            .restricted_modules
            .iter()
            .filter(|m| counts(m.severity))
        {
            for line in language.module_uses(&source, &module.name) {
                let description = if module.description.is_empty() {
                    format!("uses the restricted module `{}`", module.name)
                } else {
                    format!(
                        "uses the restricted module `{}`: {}",
                        module.name, module.description
                    )
                };
                violations.push(Violation {
                    line,
                    description,
                    severity: module.severity,
                    matched: line_text(code, &source, line),
                });
            }
        }
        violations.sort_by_key(|v| v.line);
        violations
    }

    /// Whether `code` has no violation, and the violations.
    pub fn is_safe(&self, language: &dyn LanguageHandler, code: &str) -> (bool, Vec<Violation>) {
        let violations = self.check(language, code);
        (violations.is_empty(), violations)
    }
}

/// `code[start..end]`, widened to character boundaries.
fn snippet(code: &str, mut start: usize, mut end: usize) -> &str {
    end = end.min(code.len());
    start = start.min(end);
    while !code.is_char_boundary(start) {
        start -= 1;
    }
    while !code.is_char_boundary(end) {
        end += 1;
    }
    &code[start..end]
}

/// The trimmed text of a 1-based line, shortened to 200 characters.
fn line_text(code: &str, source: &MaskedSource, line: usize) -> String {
    let text = source
        .line_range(line)
        .and_then(|range| code.get(range))
        .unwrap_or("")
        .trim();
    match text.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// The building blocks of the presets.
mod presets {
    use super::{RestrictedModule, SecurityIssueSeverity, SecurityPattern, SecurityPolicy};
    use SecurityIssueSeverity::{High, Low, Medium};

    /// Patterns and modules of one kind, all at one severity.
    pub(super) struct Category {
        pub severity: SecurityIssueSeverity,
        /// (regular expression, description)
        pub patterns: &'static [(&'static str, &'static str)],
        /// (module, description)
        pub modules: &'static [(&'static str, &'static str)],
    }

    impl Category {
        pub fn add_to(&self, policy: &mut SecurityPolicy) {
            for (pattern, description) in self.patterns {
                let pattern = SecurityPattern::new(*pattern, *description, self.severity)
                    .expect("built-in security patterns are valid");
                policy.add_pattern(pattern);
            }
            for (name, description) in self.modules {
                policy.add_restricted_module(RestrictedModule::new(
                    *name,
                    *description,
                    self.severity,
                ));
            }
        }
    }

    pub(super) static SHELL: Category = Category {
        severity: High,
        patterns: &[
            (
                r#"\b(?:os|Kernel)\s*\.\s*system\s*\(|(?:^|[^.\w$])system\s*(?:\(|['"`])"#,
                "runs a shell command (system)",
            ),
            (
                r"\b(?:os|IO)\s*\.\s*popen\d?\s*\(|(?:^|[^.\w$])popen\s*\(",
                "runs a shell command (popen)",
            ),
            (r"%x[(\[{<|!/]", "runs a shell command (%x literal)"),
        ],
        modules: &[],
    };

    pub(super) static FORK_EXEC: Category = Category {
        severity: High,
        patterns: &[
            (
                r"\bos\s*\.\s*(?:exec[lv]p?e?|spawn[lv]p?e?|posix_spawnp?|fork|forkpty)\s*\(",
                "replaces or forks the process (os.exec*, os.spawn*, os.fork)",
            ),
            (
                r"(?:^|[^.\w$])(?:fork|vfork|execl|execlp|execle|execv|execve|execvp|execvpe|posix_spawnp?)\s*\(",
                "creates or replaces a process (fork, exec*)",
            ),
        ],
        modules: &[],
    };

    pub(super) static SPAWN: Category = Category {
        severity: High,
        patterns: &[
            (r"\bsubprocess\s*\.\s*\w+", "runs a subprocess"),
            (
                r#"\b(?:Process|Kernel)\s*\.\s*(?:spawn|exec|fork)\b|(?:^|[^.\w$])(?:exec|spawn)\s+['"`]"#,
                "spawns a process (spawn, exec)",
            ),
        ],
        modules: &[
            ("subprocess", "spawns processes"),
            ("pty", "spawns processes on a terminal"),
            ("pexpect", "spawns and drives processes"),
            ("child_process", "spawns processes"),
            ("cluster", "forks worker processes"),
            ("java.lang.Runtime", "Runtime.exec spawns processes"),
            ("java.lang.ProcessBuilder", "spawns processes"),
            ("java.lang.ProcessHandle", "controls processes"),
            ("os/exec", "spawns processes"),
            ("syscall", "raw system calls (exec, fork)"),
            ("open3", "spawns processes"),
            ("unistd.h", "fork, exec and raw system calls"),
            ("spawn.h", "posix_spawn"),
            ("sys/wait.h", "waits on child processes"),
        ],
    };

    pub(super) static NETWORK: Category = Category {
        severity: Medium,
        patterns: &[(
            r"(?:^|[^.\w$])fetch\s*\(|\bnew\s+(?:WebSocket|XMLHttpRequest)\b",
            "makes a network request (fetch, WebSocket, XMLHttpRequest)",
        )],
        modules: &[
            ("socket", "network access"),
            ("socketserver", "network servers"),
            ("ssl", "network access (TLS)"),
            ("urllib", "network access"),
            ("urllib3", "network access"),
            ("http", "network access"),
            ("requests", "network access"),
            ("httpx", "network access"),
            ("aiohttp", "network access"),
            ("ftplib", "network access"),
            ("smtplib", "network access"),
            ("poplib", "network access"),
            ("imaplib", "network access"),
            ("telnetlib", "network access"),
            ("xmlrpc", "network access"),
            ("paramiko", "SSH connections"),
            ("websocket", "network access"),
            ("websockets", "network access"),
            ("net", "network access"),
            ("dgram", "network access (UDP)"),
            ("https", "network access"),
            ("http2", "network access"),
            ("tls", "network access (TLS)"),
            ("dns", "network access (DNS)"),
            ("axios", "network access"),
            ("node-fetch", "network access"),
            ("undici", "network access"),
            ("ws", "network access"),
            ("java.net", "network access"),
            ("javax.net", "network access"),
            ("crypto/tls", "network access (TLS)"),
            ("open-uri", "network access"),
            ("httparty", "network access"),
            ("faraday", "network access"),
            ("sys/socket.h", "network access"),
            ("netinet/in.h", "network access"),
            ("arpa/inet.h", "network access"),
            ("netdb.h", "network access (DNS)"),
            ("curl/curl.h", "network access"),
        ],
    };

    pub(super) static FFI: Category = Category {
        severity: High,
        patterns: &[],
        modules: &[
            ("ctypes", "calls native code"),
            ("cffi", "calls native code"),
            ("ffi-napi", "calls native code"),
            ("java.lang.foreign", "calls native code"),
            ("sun.misc.Unsafe", "raw memory access"),
            ("unsafe", "raw memory access"),
            ("C", "cgo: calls native code"),
            ("fiddle", "calls native code"),
            ("ffi", "calls native code"),
            ("dlfcn.h", "loads native libraries"),
        ],
    };

    pub(super) static DYNAMIC_CODE: Category = Category {
        severity: Medium,
        patterns: &[
            (
                r"(?:^|[^.\w$])eval\s*\(",
                "evaluates code from a string (eval)",
            ),
            (
                r"(?:^|[^.\w$])exec\s*\(",
                "executes code from a string (exec)",
            ),
            (
                r"\b__import__\s*\(",
                "imports a module named at run time (__import__)",
            ),
            (
                r"\bnew\s+Function\s*\(|\b(?:instance_eval|class_eval|module_eval)\b",
                "builds code at run time (new Function, *_eval)",
            ),
        ],
        modules: &[
            ("importlib", "imports modules named at run time"),
            ("vm", "runs code from strings"),
            ("java.lang.reflect", "reflection"),
            ("java.lang.invoke", "reflection"),
            ("javax.script", "runs scripts from strings"),
            ("plugin", "loads code at run time"),
        ],
    };

    pub(super) static FILE_DELETION: Category = Category {
        severity: Medium,
        patterns: &[
            (
                r"\bos\s*\.\s*(?:remove|unlink|rmdir|removedirs|Remove)\s*\(|\.\s*(?:unlink|rmdir|rm)(?:Sync)?\s*\(|(?:^|[^.\w$:])(?:remove|unlink|rmdir)\s*\(",
                "deletes files (remove, unlink, rmdir)",
            ),
            (
                r"\b(?:File|FileUtils|Dir|Files)\s*\.\s*(?:delete|deleteIfExists|unlink|rm|rm_f|rmdir|remove|remove_file)\b|\.\s*delete(?:OnExit)?\s*\(\s*\)|\b(?:filesystem|fs)\s*::\s*remove\s*\(",
                "deletes files (File.delete, FileUtils.rm, Files.delete, filesystem::remove)",
            ),
        ],
        modules: &[],
    };

    pub(super) static RECURSIVE_DELETION: Category = Category {
        severity: High,
        patterns: &[(
            r"\bshutil\s*\.\s*rmtree\s*\(|\bFileUtils\s*\.\s*(?:rm_r|rm_rf|remove_dir|remove_entry(?:_secure)?|rmtree)\b|\bos\s*\.\s*RemoveAll\s*\(|\bremove_all\s*\(|\.\s*rm(?:Sync)?\s*\([^)]*\brecursive\b",
            "deletes directory trees (rmtree, rm_rf, RemoveAll, remove_all)",
        )],
        modules: &[],
    };

    pub(super) static SYSTEM: Category = Category {
        severity: Medium,
        patterns: &[],
        modules: &[
            (
                "os",
                "operating system access (files, processes, environment)",
            ),
            ("shutil", "bulk file operations"),
            ("fs", "file system access"),
            ("java.nio.file", "file system access"),
            ("java.io.File", "file system access"),
            ("io/ioutil", "file system access"),
            ("fileutils", "bulk file operations"),
            ("filesystem", "file system access"),
        ],
    };

    pub(super) static INTROSPECTION: Category = Category {
        severity: Low,
        patterns: &[
            (
                r"\b__(?:builtins|subclasses|globals|code|bases|mro|loader|spec)__\b",
                "reaches interpreter internals (often used to escape restrictions)",
            ),
            (
                r"(?:^|[^.\w$])(?:compile|globals|locals|vars|breakpoint)\s*\(",
                "inspects or builds code at run time (compile, globals, locals)",
            ),
            (
                r"\bprocess\s*\.\s*(?:binding|dlopen|kill)\s*\(",
                "uses Node process internals (process.binding, dlopen, kill)",
            ),
        ],
        modules: &[
            ("multiprocessing", "starts worker processes"),
            ("pickle", "deserialization runs code"),
            ("marshal", "loads code objects"),
            ("shelve", "deserialization runs code"),
            ("signal", "signal handling"),
            ("resource", "changes process limits"),
            ("gc", "reaches every live object"),
            ("inspect", "introspection"),
            ("worker_threads", "runs code in other threads"),
            ("v8", "engine internals"),
            ("inspector", "engine internals"),
            ("sun.misc", "JVM internals"),
            ("runtime/debug", "runtime internals"),
            ("objspace", "reaches every live object"),
        ],
    };
}

#[cfg(test)]
mod tests;
