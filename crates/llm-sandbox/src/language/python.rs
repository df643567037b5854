//! Python 3, run by the system interpreter.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

use super::detect::{covers, dotted, ident, keyword_at, lines, literals_after, skip_blank};
use super::handler::{argv, LanguageHandler, PlotCapture, PlotContext, RunContext, Toolchain};
use super::source::{MaskedSource, Syntax};
use crate::error::Result;

/// Python 3 (`python3 main.py`); packages installed with pip into the workdir.
#[derive(Debug, Clone, Copy, Default)]
pub struct Python;

/// Where pip installs packages, relative to the workdir.
const PACKAGES_DIR: &str = ".llm-sandbox/python-packages";

/// The start-up hook that captures plots (Python's `sitecustomize`), and its directory in the
/// run directory. The directory goes first on PYTHONPATH; the hook takes it off again.
const PLOT_HOOK: &str = include_str!("python_plots.py");
const PLOT_HOOK_DIR: &str = "plot-hook";

impl LanguageHandler for Python {
    fn name(&self) -> &str {
        "python"
    }
    fn aliases(&self) -> &[&str] {
        &["py", "python3"]
    }
    fn file_extension(&self) -> &str {
        "py"
    }
    fn toolchain(&self) -> Vec<Toolchain> {
        vec![Toolchain {
            binary: "python3",
            package: "python3",
        }]
    }
    fn run_command(&self, ctx: &RunContext) -> Vec<String> {
        argv(["python3", &ctx.source_path])
    }
    fn environment(&self, workdir: &str) -> Vec<(String, String)> {
        vec![
            ("PYTHONPATH".into(), format!("{workdir}/{PACKAGES_DIR}")),
            ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            ("PYTHONUNBUFFERED".into(), "1".into()),
            ("MPLBACKEND".into(), "Agg".into()),
        ]
    }
    fn install_command(&self, libraries: &[String], workdir: &str) -> Result<Vec<String>> {
        let target = format!("{workdir}/{PACKAGES_DIR}");
        // -I (isolated): no PYTHONPATH, no user site, and neither the working directory nor
        // the script's on sys.path, so nothing the code planted is imported.
        let mut command = argv([
            "python3",
            "-I",
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--no-cache-dir",
            "--target",
            &target,
            "--",
        ]);
        command.extend(libraries.iter().cloned());
        Ok(command)
    }
    fn install_environment(&self, _home: &str) -> Vec<(String, String)> {
        // pip reads no configuration file at all when PIP_CONFIG_FILE is the null device.
        vec![("PIP_CONFIG_FILE".into(), "/dev/null".into())]
    }
    fn package_index_hosts(&self) -> Vec<String> {
        vec!["pypi.org".into(), "files.pythonhosted.org".into()]
    }
    fn syntax(&self) -> Syntax {
        Syntax::Python
    }
    /// Forces the Agg backend and patches matplotlib (`plt.show`, `Figure.show`, `savefig`;
    /// seaborn and pandas draw through it), PIL (`Image.save`, `Image.show`) and plotly
    /// (`show`, `write_html`, `write_image`) when the program imports them.
    fn plot_capture(&self, ctx: &PlotContext, env: &[(String, String)]) -> Option<PlotCapture> {
        let hook_dir = format!("{}/{PLOT_HOOK_DIR}", ctx.run_dir);
        let python_path = env
            .iter()
            .rev()
            .find(|(key, _)| key == "PYTHONPATH")
            .map(|(_, value)| value.clone())
            .unwrap_or_default();
        let hook_path = if python_path.is_empty() {
            hook_dir
        } else {
            format!("{hook_dir}:{python_path}")
        };
        Some(PlotCapture {
            files: vec![(
                format!("{PLOT_HOOK_DIR}/sitecustomize.py"),
                PLOT_HOOK.as_bytes().to_vec(),
            )],
            env: vec![
                ("PYTHONPATH".into(), hook_path),
                ("LLM_SANDBOX_PYTHONPATH".into(), python_path),
                ("LLM_SANDBOX_PLOTS_DIR".into(), ctx.plots_dir.clone()),
                ("LLM_SANDBOX_PLOT_FORMAT".into(), ctx.format.clone()),
                ("MPLBACKEND".into(), "Agg".into()),
            ],
        })
    }
    /// `import m`, `import a, m as x`, `from m import …` (also parenthesized over lines),
    /// `from p import m` (for `p.m`), `__import__("m")` and `importlib.import_module("m")`.
    fn module_uses(&self, source: &MaskedSource, module: &str) -> Vec<usize> {
        lines(
            imports(source)
                .iter()
                .filter_map(|group| group.iter().find(|(name, _)| covers(module, name, '.')))
                .map(|(_, offset)| source.line_of(*offset))
                .collect(),
        )
    }
}

/// `from <module> import …` and plain `import …` keywords.
static FROM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bfrom\b").expect("valid regex"));
static IMPORT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bimport\b").expect("valid regex"));
/// `__import__("os")`, `importlib.import_module('os')`: the module given as a string literal.
static DYNAMIC_IMPORT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"\b(?:__import__|import_module)\s*\(\s*(?:name\s*=\s*)?(?i:[rbuf]{0,2})(?:'''|"""|'|")"#,
    )
    .expect("valid regex")
});

/// Every module name the code imports, with the byte offset where the name appears, in groups:
/// one per `from` statement, one per other imported name.
///
/// `from a.b import c, d` is the group `a.b`, `a.b.c`, `a.b.d` (the names may be submodules),
/// the package first; relative imports (`from . import x`) import the program's own files and
/// are skipped.
fn imports(source: &MaskedSource) -> Vec<Vec<(String, usize)>> {
    let text = source.masked.as_str();
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut from_import_keywords = HashSet::new();
    for m in FROM.find_iter(text) {
        let mut pos = skip_blank(bytes, m.end(), false);
        let relative = bytes.get(pos) == Some(&b'.');
        while bytes.get(pos) == Some(&b'.') {
            pos = skip_blank(bytes, pos + 1, false);
        }
        let base = if keyword_at(bytes, pos, "import") {
            None
        } else {
            dotted(text, pos).map(|(name, end)| (name, pos, end))
        };
        if let Some((_, _, end)) = &base {
            pos = skip_blank(bytes, *end, false);
        } else if !relative {
            continue;
        }
        if !keyword_at(bytes, pos, "import") {
            continue;
        }
        from_import_keywords.insert(pos);
        if relative {
            continue;
        }
        let Some((base, base_start, _)) = base else {
            continue;
        };
        let mut group = vec![(base.clone(), base_start)];
        for (name, start) in import_list(text, pos + "import".len(), false) {
            if name != "*" {
                group.push((format!("{base}.{name}"), start));
            }
        }
        found.push(group);
    }
    for m in IMPORT.find_iter(text) {
        if !from_import_keywords.contains(&m.start()) {
            found.extend(
                import_list(text, m.end(), true)
                    .into_iter()
                    .map(|name| vec![name]),
            );
        }
    }
    for literal in literals_after(source, &DYNAMIC_IMPORT) {
        found.push(vec![(literal.value.trim().to_string(), literal.start)]);
    }
    found
}

/// The names after an `import` keyword: `a, b.c as d` or, after `from`, `(a,\n b)` and `*`.
fn import_list(text: &str, pos: usize, dotted_names: bool) -> Vec<(String, usize)> {
    let bytes = text.as_bytes();
    let mut pos = skip_blank(bytes, pos, false);
    let parenthesized = !dotted_names && bytes.get(pos) == Some(&b'(');
    if parenthesized {
        pos += 1;
    }
    let mut names = Vec::new();
    loop {
        pos = skip_blank(bytes, pos, parenthesized);
        if bytes.get(pos) == Some(&b'*') {
            names.push(("*".to_string(), pos));
            break;
        }
        let name = if dotted_names {
            dotted(text, pos)
        } else {
            ident(text, pos).map(|(name, end)| (name.to_string(), end))
        };
        let Some((name, end)) = name else {
            break;
        };
        names.push((name, pos));
        pos = skip_blank(bytes, end, parenthesized);
        if keyword_at(bytes, pos, "as") {
            pos = skip_blank(bytes, pos + 2, parenthesized);
            if let Some((_, end)) = ident(text, pos) {
                pos = skip_blank(bytes, end, parenthesized);
            }
        }
        if bytes.get(pos) != Some(&b',') {
            break;
        }
        pos += 1;
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(code: &str, module: &str) -> Vec<usize> {
        Python.module_uses(&MaskedSource::new(code, Python.syntax()), module)
    }

    #[test]
    fn plain_imports() {
        assert_eq!(uses("import os", "os"), [1]);
        assert_eq!(uses("import sys\nimport a, os", "os"), [2]);
        assert_eq!(uses("import os as x", "os"), [1]);
        assert_eq!(uses("import sys, os as o, json", "os"), [1]);
        assert_eq!(uses("import os.path", "os"), [1]);
        assert_eq!(uses("import os.path", "os.path"), [1]);
        assert_eq!(uses("import os . path", "os.path"), [1]);
        assert_eq!(uses("import sys, \\\n    os", "os"), [2]);
        assert_eq!(uses("x = 1; import os", "os"), [1]);
        assert_eq!(uses("if True:\n    import os\n", "os"), [2]);
        assert_eq!(uses("try: import os\nexcept: pass", "os"), [1]);
    }

    #[test]
    fn from_imports() {
        assert_eq!(uses("from os import path", "os"), [1]);
        assert_eq!(uses("from os import path", "os.path"), [1]);
        assert_eq!(uses("from os.path import join", "os"), [1]);
        assert_eq!(uses("from os.path import join", "os.path"), [1]);
        assert_eq!(uses("from os import *", "os"), [1]);
        assert_eq!(uses("from os import (\n    a,\n    b,\n)", "os"), [1]);
        assert_eq!(
            uses("from os import (\n    getcwd,\n    path,\n)", "os.path"),
            [3]
        );
        assert_eq!(
            uses("from subprocess import run as r, Popen", "subprocess"),
            [1]
        );
        assert_eq!(uses("from \\\n  os import path", "os"), [2]);
    }

    #[test]
    fn dynamic_imports_take_the_name_as_a_string() {
        assert_eq!(uses("m = __import__(\"os\")", "os"), [1]);
        assert_eq!(uses("m = __import__('os.path')", "os"), [1]);
        assert_eq!(
            uses("import importlib\nm = importlib.import_module('os')", "os"),
            [2]
        );
        assert_eq!(
            uses(
                "from importlib import import_module\nimport_module(\"subprocess\")",
                "subprocess"
            ),
            [2]
        );
        assert_eq!(uses("__import__(name='os')", "os"), [1]);
        assert_eq!(uses("__import__(r'os')", "os"), [1]);
        assert_eq!(uses("__import__(\"\"\"os\"\"\")", "os"), [1]);
        assert_eq!(uses("__import__('\\x6fs')", "os"), [1]);
    }

    #[test]
    fn similar_names_comments_and_strings_do_not_count() {
        for code in [
            "import osmosis",
            "import cosmos",
            "from cosmos import os",
            "import posix",
            "# import os",
            "x = 1  # from os import path",
            "print('import os')",
            "s = \"\"\"\nimport os\n\"\"\"",
            "\"\"\"docstring: import os\"\"\"",
            "print(\"__import__('os')\")",
            "f(os)",
            "from . import os",
            "from .os import path",
            "raise E from os",
            "os.system('x')",
            "yield from os",
        ] {
            assert_eq!(uses(code, "os"), Vec::<usize>::new(), "{code:?}");
        }
        assert_eq!(uses("import os", "os.path"), Vec::<usize>::new());
        assert_eq!(uses("import os", "o"), Vec::<usize>::new());
    }

    #[test]
    fn from_on_one_line_and_import_on_the_next_are_separate_statements() {
        assert_eq!(uses("raise E from e\nimport os", "os"), [2]);
        assert_eq!(uses("x = yield from g\nimport os\nimport os", "os"), [2, 3]);
    }

    #[test]
    fn fstring_fields_are_code() {
        assert_eq!(uses("f\"{__import__('os').getcwd()}\"", "os"), [1]);
    }
}
