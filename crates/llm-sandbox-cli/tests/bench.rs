//! `llm-sandbox bench` on the native backend: the table's shape, never its timings.

use std::process::{Command, Stdio};

#[test]
fn bench_prints_a_table_of_numeric_medians() {
    let output = Command::new(env!("CARGO_BIN_EXE_llm-sandbox"))
        .args([
            "bench",
            "--iterations",
            "3",
            "--backends",
            "native",
            "--snippets",
            "8",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("the llm-sandbox binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "stderr: {stderr}");
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|line| line.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(
        rows[0],
        ["measure", "median", "p95", "floor median", "ratio"]
    );
    for measure in [
        "native one-shot python (ms)",
        "native session open python (ms)",
        "native warm run python (ms)",
        "native session close python (ms)",
        "native throughput 1 session (snippets/s)",
        "native idle session memory, PSS (MiB)",
    ] {
        let row = rows
            .iter()
            .find(|row| row[0] == measure)
            .unwrap_or_else(|| panic!("no {measure:?} row in:\n{stdout}"));
        assert!(row[1].parse::<f64>().is_ok(), "{row:?}");
    }
    let throughput = rows
        .iter()
        .filter(|row| row[0].starts_with("native throughput"))
        .count();
    assert!(throughput >= 2, "{stdout}");
}
