//! Ruby.

use super::{argv, LanguageHandler, RunContext, Toolchain};
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
        let mut command = argv([
            "gem",
            "install",
            "--no-document",
            "--install-dir",
            &target,
            "--",
        ]);
        command.extend(libraries.iter().cloned());
        Ok(command)
    }
}
