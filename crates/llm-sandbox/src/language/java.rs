//! Java, run in source-file mode.

use super::{LanguageHandler, RunContext, Toolchain};

/// Java (`java Main.java`, source-file mode: compile errors come back as the run's result).
#[derive(Debug, Clone, Copy, Default)]
pub struct Java;

impl LanguageHandler for Java {
    fn name(&self) -> &str {
        "java"
    }
    fn file_extension(&self) -> &str {
        "java"
    }
    fn file_name(&self) -> String {
        "Main.java".into()
    }
    fn toolchain(&self) -> Vec<Toolchain> {
        vec![Toolchain {
            binary: "java",
            package: "default-jdk-headless",
        }]
    }
    fn run_command(&self, ctx: &RunContext) -> Vec<String> {
        let mut command = vec![
            "java".to_string(),
            "-XX:+UseSerialGC".into(),
            "-XX:TieredStopAtLevel=1".into(),
            "-Xshare:auto".into(),
        ];
        if let Some(bytes) = ctx.memory_limit {
            // The JVM cannot see the sandbox's cgroup; size its heap from the limit instead.
            command.push(format!("-XX:MaxRAM={bytes}"));
        }
        command.push(ctx.source_path.clone());
        command
    }
}
