//! Python 3, run by the system interpreter.

use super::{argv, LanguageHandler, RunContext, Toolchain};
use crate::error::Result;

/// Python 3 (`python3 main.py`); packages installed with pip into the workdir.
#[derive(Debug, Clone, Copy, Default)]
pub struct Python;

/// Where pip installs packages, relative to the workdir.
const PACKAGES_DIR: &str = ".llm-sandbox/python-packages";

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
        let mut command = argv([
            "python3",
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "--target",
            &target,
            "--",
        ]);
        command.extend(libraries.iter().cloned());
        Ok(command)
    }
}
