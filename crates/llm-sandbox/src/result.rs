//! What a run returns.

use std::time::Duration;

use serde::Serialize;

use crate::backend::ExecOutput;

/// The outcome of running code or a command. A non-zero exit is a result, not an error.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExecutionResult {
    /// The program's exit code (`128 + signal` when a signal ended it; 137 after a timeout kill).
    pub exit_code: i32,
    /// Standard output as UTF-8 (invalid bytes replaced), with a marker when truncated.
    pub stdout: String,
    /// Standard error as UTF-8 (invalid bytes replaced), with a marker when truncated.
    pub stderr: String,
    /// Whether the execution timeout killed the program.
    pub timed_out: bool,
    /// Whether the memory limit was hit (the kernel killed a process of the sandbox).
    pub out_of_memory: bool,
    /// Wall time of the run, including any compile step.
    #[serde(skip)]
    pub duration: Duration,
    /// Plots captured during the run (filled when plotting is enabled).
    pub plots: Vec<PlotOutput>,
}

/// One captured plot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlotOutput {
    /// The image format, e.g. `png`.
    pub format: String,
    /// The file content, base64-encoded.
    pub content_base64: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Resolution, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dpi: Option<u32>,
}

impl ExecutionResult {
    /// Whether the program exited with code 0 and was not killed by the timeout.
    pub fn success(&self) -> bool {
        self.exit_code == 0 && !self.timed_out
    }

    pub(crate) fn from_output(output: ExecOutput, limit: u64) -> Self {
        ExecutionResult {
            exit_code: output.exit_code,
            stdout: decode(&output.stdout, output.stdout_truncated, limit),
            stderr: decode(&output.stderr, output.stderr_truncated, limit),
            timed_out: output.timed_out,
            out_of_memory: output.out_of_memory,
            duration: output.duration,
            plots: Vec::new(),
        }
    }
}

/// Decodes output bytes as UTF-8 with replacement and marks truncation.
fn decode(bytes: &[u8], truncated: bool, limit: u64) -> String {
    let mut text = String::from_utf8_lossy(bytes).into_owned();
    if truncated {
        if !text.ends_with('\n') && !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "[llm-sandbox: output truncated after {limit} bytes]\n"
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_replaced_and_truncation_marked() {
        let output = ExecOutput {
            stdout: b"ok \xff\xfe".to_vec(),
            stdout_truncated: true,
            ..Default::default()
        };
        let result = ExecutionResult::from_output(output, 5);
        assert_eq!(
            result.stdout,
            "ok \u{fffd}\u{fffd}\n[llm-sandbox: output truncated after 5 bytes]\n"
        );
        assert_eq!(result.stderr, "");
    }
}
