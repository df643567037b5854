//! Go, built with the go tool.

use super::{argv, LanguageHandler, RunContext, Toolchain};

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
}
