//! JavaScript, run by Node.js.

use super::{argv, LanguageHandler, RunContext, Toolchain};
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
            "--prefix",
            workdir,
            "--",
        ]);
        command.extend(libraries.iter().cloned());
        Ok(command)
    }
}
