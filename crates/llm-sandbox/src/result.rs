//! What a run returns.

use std::time::Duration;

use serde::Serialize;

use crate::artifacts::{Artifact, Omitted, PlotOutput};
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
    /// Standard output exactly as written (up to the limit, then the marker).
    #[serde(skip)]
    pub stdout_bytes: Vec<u8>,
    /// Standard error exactly as written (up to the limit, then the marker).
    #[serde(skip)]
    pub stderr_bytes: Vec<u8>,
    /// Whether the execution timeout killed the program.
    pub timed_out: bool,
    /// Whether the memory limit was hit (the kernel killed a process of the sandbox).
    pub out_of_memory: bool,
    /// Wall time of the run, including any compile step.
    #[serde(skip)]
    pub duration: Duration,
    /// Plots captured during the run, in the order they were made (when plotting is enabled;
    /// with `keep_plots`, every plot since the last `clear_plots`).
    pub plots: Vec<PlotOutput>,
    /// Files the run wrote under the output folder (when artifacts are collected).
    pub artifacts: Vec<Artifact>,
    /// Plots and files the run made that are not returned (over a limit, not a regular file),
    /// and why. Empty when everything came back.
    pub omitted: Vec<Omitted>,
}

impl ExecutionResult {
    /// Whether the program exited with code 0 and was not killed by the timeout.
    pub fn success(&self) -> bool {
        self.exit_code == 0 && !self.timed_out
    }

    pub(crate) fn from_output(output: ExecOutput, limit: u64) -> Self {
        let stdout_bytes = mark(output.stdout, output.stdout_truncated, limit);
        let stderr_bytes = mark(output.stderr, output.stderr_truncated, limit);
        ExecutionResult {
            exit_code: output.exit_code,
            stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
            stderr: String::from_utf8_lossy(&stderr_bytes).into_owned(),
            stdout_bytes,
            stderr_bytes,
            timed_out: output.timed_out,
            out_of_memory: output.out_of_memory,
            duration: output.duration,
            plots: Vec::new(),
            artifacts: Vec::new(),
            omitted: Vec::new(),
        }
    }
}

/// Appends the truncation marker (on a line of its own) when output was cut.
fn mark(mut bytes: Vec<u8>, truncated: bool, limit: u64) -> Vec<u8> {
    if truncated {
        if !bytes.is_empty() && !bytes.ends_with(b"\n") {
            bytes.push(b'\n');
        }
        let marker = format!("[llm-sandbox: output truncated after {limit} bytes]\n");
        bytes.extend_from_slice(marker.as_bytes());
    }
    bytes
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
        assert_eq!(
            result.stdout_bytes,
            b"ok \xff\xfe\n[llm-sandbox: output truncated after 5 bytes]\n"
        );
        assert_eq!(result.stderr, "");
    }
}
