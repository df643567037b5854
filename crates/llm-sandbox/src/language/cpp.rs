//! C++, compiled with g++.

use super::{argv, LanguageHandler, RunContext, Toolchain};

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
}
