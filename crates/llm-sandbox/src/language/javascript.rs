//! JavaScript, run by Node.js.

use std::sync::LazyLock;

use regex::Regex;

use super::detect::{covers, lines, literals_after};
use super::handler::{argv, LanguageHandler, RunContext, Toolchain};
use super::source::{MaskedSource, Syntax};
use crate::error::Result;

/// JavaScript (`node main.js`); packages installed with npm into the workdir.
#[derive(Debug, Clone, Copy, Default)]
pub struct JavaScript;

impl LanguageHandler for JavaScript {
    fn name(&self) -> &str {
        "javascript"
    }
    fn aliases(&self) -> &[&str] {
        &["js", "node", "nodejs"]
    }
    fn file_extension(&self) -> &str {
        "js"
    }
    fn toolchain(&self) -> Vec<Toolchain> {
        vec![Toolchain {
            binary: "node",
            package: "nodejs",
        }]
    }
    fn run_command(&self, ctx: &RunContext) -> Vec<String> {
        argv(["node", &ctx.source_path])
    }
    fn environment(&self, workdir: &str) -> Vec<(String, String)> {
        vec![("NODE_PATH".into(), format!("{workdir}/node_modules"))]
    }
    fn install_command(&self, libraries: &[String], workdir: &str) -> Result<Vec<String>> {
        let mut command = argv([
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--userconfig",
            "/dev/null",
            "--globalconfig",
            "/dev/null",
            "--prefix",
            workdir,
            "--",
        ]);
        command.extend(libraries.iter().cloned());
        Ok(command)
    }
    fn install_environment(&self, home: &str) -> Vec<(String, String)> {
        vec![("npm_config_cache".into(), format!("{home}/.npm"))]
    }
    fn installer_config_files(&self, workdir: &str) -> Vec<String> {
        vec![format!("{workdir}/.npmrc")]
    }
    fn package_index_hosts(&self) -> Vec<String> {
        vec!["registry.npmjs.org".into()]
    }
    fn syntax(&self) -> Syntax {
        Syntax::CLike
    }
    /// `require('m')`, `import … from 'm'`, `import 'm'`, `export … from 'm'`, `import('m')`,
    /// with or without the `node:` scheme; `m` covers its subpaths (`fs` covers `fs/promises`).
    fn module_uses(&self, source: &MaskedSource, module: &str) -> Vec<usize> {
        let module = specifier(module);
        lines(
            literals_after(source, &CALL)
                .chain(literals_after(source, &STATIC))
                .filter(|literal| covers(module, specifier(&literal.value), '/'))
                .map(|literal| literal.line)
                .collect(),
        )
    }
}

/// `require('m')`, `import('m')`: the call takes the module as its first argument.
static CALL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\b(?:require|import)\s*\(\s*['"`]"#).expect("valid regex"));
/// `import … from 'm'`, `export … from 'm'` and the bare `import 'm'`.
static STATIC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\b(?:from|import)\s*['"]"#).expect("valid regex"));

/// A module specifier without Node's `node:` scheme.
fn specifier(name: &str) -> &str {
    let name = name.trim();
    name.strip_prefix("node:").unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uses(code: &str, module: &str) -> Vec<usize> {
        JavaScript.module_uses(&MaskedSource::new(code, JavaScript.syntax()), module)
    }

    #[test]
    fn require_and_imports() {
        let cp = "child_process";
        assert_eq!(uses("const cp = require('child_process');", cp), [1]);
        assert_eq!(uses("const cp = require ( \"child_process\" );", cp), [1]);
        assert_eq!(uses("const cp = require(`child_process`);", cp), [1]);
        assert_eq!(uses("import x from 'child_process';", cp), [1]);
        assert_eq!(uses("import { exec } from \"child_process\";", cp), [1]);
        assert_eq!(
            uses("import {\n  exec,\n  spawn,\n} from 'child_process';", cp),
            [4]
        );
        assert_eq!(uses("import * as cp from 'node:child_process';", cp), [1]);
        assert_eq!(uses("const m = await import('child_process');", cp), [1]);
        assert_eq!(uses("import 'child_process';", cp), [1]);
        assert_eq!(uses("export { exec } from 'child_process';", cp), [1]);
        assert_eq!(uses("process.mainModule.require('child_process')", cp), [1]);
        assert_eq!(uses("require('child_\\x70rocess')", cp), [1]);
        assert_eq!(uses("const x = `${require('child_process')}`", cp), [1]);
    }

    #[test]
    fn node_scheme_and_subpaths() {
        assert_eq!(uses("require('node:fs')", "fs"), [1]);
        assert_eq!(uses("require('fs')", "node:fs"), [1]);
        assert_eq!(uses("import fs from 'fs/promises'", "fs"), [1]);
        assert_eq!(uses("require('fs')", "fs/promises"), Vec::<usize>::new());
    }

    #[test]
    fn comments_strings_and_similar_names_do_not_count() {
        for code in [
            "// require('child_process')",
            "/* import x from 'child_process' */",
            "console.log(\"require('child_process')\")",
            "const s = 'child_process';",
            "require('child_process_extra')",
            "require('my-child_process')",
            "const re = /require('child_process')/;",
            "const t = `require('child_process')`;",
            "requirex('child_process')",
        ] {
            assert_eq!(uses(code, "child_process"), Vec::<usize>::new(), "{code:?}");
        }
    }

    #[test]
    fn line_numbers() {
        let code = "const a = 1;\n// require('fs')\nconst fs = require('fs');\n";
        assert_eq!(uses(code, "fs"), [3]);
    }
}
