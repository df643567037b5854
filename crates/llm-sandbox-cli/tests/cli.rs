//! End-to-end tests of the `llm-sandbox` binary on the native backend.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_llm-sandbox");

/// Runs the binary with `args` and an empty stdin.
fn llm_sandbox(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the llm-sandbox binary runs")
}

/// Runs the binary with `args`, giving it `stdin`.
fn llm_sandbox_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the llm-sandbox binary starts");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("stderr is UTF-8")
}

/// Asserts a successful run that printed exactly `expected` on stdout and nothing on stderr.
fn assert_prints(output: &Output, expected: &str) {
    assert_eq!(stderr(output), "", "unexpected stderr");
    assert_eq!(stdout(output), expected);
    assert_eq!(output.status.code(), Some(0));
}

/// Asserts exit 125 with one line on stderr, prefixed `llm-sandbox: ` and containing `fragment`.
fn assert_sandbox_failure(output: &Output, fragment: &str) {
    let stderr = stderr(output);
    assert_eq!(output.status.code(), Some(125), "stderr: {stderr}");
    assert!(stderr.starts_with("llm-sandbox: "), "{stderr:?}");
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains(fragment), "{stderr:?} lacks {fragment:?}");
    assert!(output.stdout.is_empty(), "{:?}", stdout(output));
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).expect("stdout is one JSON object")
}

#[test]
fn runs_code_given_with_c() {
    assert_prints(&llm_sandbox(&["run", "-c", "print('hello')"]), "hello\n");
}

#[test]
fn takes_the_language_from_the_file_extension() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("script.js");
    std::fs::write(&file, "console.log(`js ${typeof process.version}`)").unwrap();
    let output = llm_sandbox(&["run", file.to_str().unwrap()]);
    assert_prints(&output, "js string\n");
}

#[test]
fn reads_the_code_from_stdin_with_a_dash() {
    for args in [["run", "-"].as_slice(), ["run", "--code", "-"].as_slice()] {
        let output = llm_sandbox_with_stdin(args, b"print(6 * 7)\n");
        assert_prints(&output, "42\n");
    }
}

#[test]
fn passes_the_exit_code_through() {
    let output = llm_sandbox(&["run", "-c", "import sys; sys.exit(3)"]);
    assert_eq!(output.status.code(), Some(3));
}

#[test]
fn passes_stderr_through_exactly() {
    let output = llm_sandbox(&[
        "run",
        "-c",
        "import sys; sys.stdout.write('out'); sys.stderr.write('oops')",
    ]);
    assert_eq!(stdout(&output), "out");
    assert_eq!(stderr(&output), "oops");
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn a_timeout_exits_124() {
    let output = llm_sandbox(&["run", "-t", "1", "-c", "while True: pass"]);
    assert_eq!(output.status.code(), Some(124), "{}", stderr(&output));

    let output = llm_sandbox(&["run", "--json", "-t", "1", "-c", "while True: pass"]);
    assert_eq!(output.status.code(), Some(124), "{}", stderr(&output));
    assert_eq!(json(&output)["timed_out"], true);
}

#[test]
fn json_output_has_exactly_the_documented_keys() {
    let code = "import sys; print('hi'); sys.stderr.write('warn'); sys.exit(2)";
    let output = llm_sandbox(&["run", "--json", "-c", code]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let value = json(&output);
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "duration_ms",
            "exit_code",
            "out_of_memory",
            "plots",
            "stderr",
            "stdout",
            "timed_out"
        ]
    );
    assert_eq!(value["exit_code"], 2);
    assert_eq!(value["stdout"], "hi\n");
    assert_eq!(value["stderr"], "warn");
    assert_eq!(value["timed_out"], false);
    assert_eq!(value["out_of_memory"], false);
    assert_eq!(value["plots"], serde_json::json!([]));
    assert!(value["duration_ms"].is_u64());
}

#[test]
fn an_unknown_language_fails_with_125() {
    let output = llm_sandbox(&["run", "-l", "cobol", "-c", "DISPLAY 'HI'."]);
    assert_sandbox_failure(&output, "cobol");
}

#[test]
fn a_bad_memory_size_fails_with_125() {
    let output = llm_sandbox(&["run", "--memory", "lots", "-c", "print(1)"]);
    assert_sandbox_failure(&output, "--memory");
}

#[test]
fn a_usage_error_fails_with_125() {
    let output = llm_sandbox(&["run", "--no-such-flag", "-c", "print(1)"]);
    assert_sandbox_failure(&output, "--no-such-flag");
}

#[test]
fn an_env_value_without_equals_fails_with_125() {
    let output = llm_sandbox(&["run", "-e", "NOVALUE", "-c", "print(1)"]);
    assert_sandbox_failure(&output, "KEY=VALUE");
}

#[test]
fn a_policy_blocks_with_126_and_lets_safe_code_run() {
    let code = "print('never')\nimport subprocess";
    let output = llm_sandbox(&["run", "--policy", "production", "-c", code]);
    assert_eq!(output.status.code(), Some(126), "{}", stderr(&output));
    assert_eq!(stdout(&output), "", "blocked code must not run");
    let report = stderr(&output);
    assert!(
        report.starts_with("llm-sandbox: line 2:") && report.contains("subprocess"),
        "{report}"
    );

    let output = llm_sandbox(&["run", "--policy", "production", "-c", "print('fine')"]);
    assert_prints(&output, "fine\n");
    let output = llm_sandbox(&["run", "--policy", "no-such-policy", "-c", "print(1)"]);
    assert_sandbox_failure(&output, "neither a security preset");
}

#[test]
fn check_prints_violations_and_exits_1_when_blocked() {
    let output = llm_sandbox(&[
        "check",
        "-l",
        "go",
        "-c",
        "package main\nimport (\n  x \"os/exec\"\n)\nfunc main() { x.Command(\"id\") }",
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with("line 3:") && stdout(&output).contains("os/exec"),
        "{}",
        stdout(&output)
    );

    let output = llm_sandbox(&[
        "check",
        "--json",
        "--policy",
        "strict",
        "-c",
        "s = '# import os'\nprint(s)",
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        json(&output),
        serde_json::json!({"safe": true, "violations": []})
    );

    let output = llm_sandbox(&["check", "--json", "-c", "__import__('os').system('id')"]);
    assert_eq!(output.status.code(), Some(1));
    let report = json(&output);
    assert_eq!(report["safe"], false);
    assert_eq!(report["violations"][0]["line"], 1);
}

#[test]
fn an_unbuilt_backend_fails_with_125_and_the_library_reason() {
    let output = llm_sandbox(&["run", "-b", "kubernetes", "-c", "print(1)"]);
    assert_sandbox_failure(&output, "kubernetes backend is unavailable");
}

#[test]
fn auto_picks_the_native_backend() {
    let output = llm_sandbox(&["run", "-b", "auto", "-c", "print('auto')"]);
    assert_prints(&output, "auto\n");
}

#[test]
fn help_and_version_exit_0() {
    for flag in ["--help", "--version"] {
        let output = llm_sandbox(&[flag]);
        assert_eq!(output.status.code(), Some(0));
        assert!(
            stdout(&output).contains("llm-sandbox"),
            "{}",
            stdout(&output)
        );
    }
    assert!(stdout(&llm_sandbox(&["run", "--help"])).contains("--stdin-file /dev/stdin"));
}

#[test]
fn env_variables_reach_the_program() {
    let code = "import os; print(os.environ['GREETING'], os.environ['EQ'])";
    let output = llm_sandbox(&["run", "-e", "GREETING=hi", "--env", "EQ=a=b", "-c", code]);
    assert_prints(&output, "hi a=b\n");
}

#[test]
fn stdin_file_reaches_the_program_and_own_stdin_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.txt");
    std::fs::write(&input, "from the file").unwrap();
    let code = "import sys; print(repr(sys.stdin.read()))";

    let output = llm_sandbox_with_stdin(
        &["run", "--stdin-file", input.to_str().unwrap(), "-c", code],
        b"not forwarded",
    );
    assert_prints(&output, "'from the file'\n");

    let output = llm_sandbox_with_stdin(&["run", "-c", code], b"not forwarded");
    assert_prints(&output, "''\n");
}

#[test]
fn invalid_utf8_output_is_replaced_not_fatal() {
    let code = "import sys; sys.stdout.buffer.write(b'ok \\xff\\n')";
    let output = llm_sandbox(&["run", "-c", code]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        output.stdout, b"ok \xff\n",
        "raw bytes pass through unchanged"
    );

    let output = llm_sandbox(&["run", "--json", "-c", code]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(json(&output)["stdout"], "ok \u{fffd}\n");
}

#[test]
fn languages_lists_all_six() {
    let names = ["cpp", "go", "java", "javascript", "python", "ruby"];
    let output = llm_sandbox(&["languages"]);
    assert_eq!(output.status.code(), Some(0));
    let table = stdout(&output);
    for name in names {
        assert!(
            table
                .lines()
                .any(|line| line.starts_with(&format!("{name} "))),
            "{name} missing from:\n{table}"
        );
    }

    let listed = json(&llm_sandbox(&["languages", "--json"]));
    let listed: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|language| language["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, names);
}

#[test]
fn doctor_finds_the_native_backend() {
    let output = llm_sandbox(&["doctor"]);
    let report = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{report}{}", stderr(&output));
    assert!(report.contains("native: available"), "{report}");
    assert!(report.contains("kubernetes: not available"), "{report}");
    // Backends the environment says are there (CI: all of them) must be found.
    let backends = std::env::var("LLM_SANDBOX_BACKENDS").unwrap_or_default();
    for backend in backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
        assert!(
            report.contains(&format!("{backend}: available")),
            "{backend}: {report}"
        );
    }
}

#[test]
fn auto_follows_the_configured_order_and_says_what_it_skipped() {
    let output = Command::new(env!("CARGO_BIN_EXE_llm-sandbox"))
        .args(["run", "-v", "-b", "auto", "-c", "print('ordered')"])
        .env("LLM_SANDBOX_AUTO_ORDER", "kubernetes,native")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(stdout(&output), "ordered\n", "{}", stderr(&output));
    let log = stderr(&output);
    assert!(
        log.contains("skipping the kubernetes backend") && log.contains("using the native backend"),
        "{log}"
    );
}

#[test]
fn images_build_reports_a_missing_registry_and_reuses_what_is_built_offline() {
    let output = llm_sandbox(&["images", "build", "--docker", "cobol"]);
    assert_sandbox_failure(&output, "no image recipe for `cobol`");
    let backends = std::env::var("LLM_SANDBOX_BACKENDS").unwrap_or_default();
    if !backends.split(',').any(|b| b.trim() == "docker") {
        eprintln!("SKIPPED: the offline image check needs docker in LLM_SANDBOX_BACKENDS");
        return;
    }
    // CI built the images with images/build-offline; the embedded recipe is the same, so
    // nothing is rebuilt.
    let output = llm_sandbox(&["images", "build", "--offline", "--docker", "python"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = format!("{}{}", stdout(&output), stderr(&output));
    assert!(text.contains("python: up to date"), "{text}");
}

#[test]
fn a_dockerfile_builds_the_image_quietly_when_stderr_is_not_a_terminal() {
    let backends = std::env::var("LLM_SANDBOX_BACKENDS").unwrap_or_default();
    if !backends.split(',').any(|b| b.trim() == "docker") {
        eprintln!("SKIPPED: --dockerfile needs docker in LLM_SANDBOX_BACKENDS");
        return;
    }
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("note.txt"), "from the build\n").unwrap();
    let dockerfile = context.path().join("Dockerfile");
    std::fs::write(
        &dockerfile,
        "FROM llm-sandbox/python:latest\nCOPY note.txt /note.txt\n",
    )
    .unwrap();
    let dockerfile = dockerfile.to_str().unwrap();
    let code = "print(open('/note.txt').read(), end='')";
    let output = llm_sandbox(&[
        "run",
        "-b",
        "docker",
        "--dockerfile",
        dockerfile,
        "-c",
        code,
    ]);
    assert_prints(&output, "from the build\n");
}

#[test]
fn plots_and_artifacts_are_written_to_folders() {
    let dir = tempfile::tempdir().unwrap();
    let (plots, artifacts) = (dir.path().join("plots"), dir.path().join("artifacts"));
    let code = "import matplotlib.pyplot as plt\n\
                plt.figure(figsize=(3, 2))\n\
                plt.plot([1, 2])\n\
                plt.show()\n\
                plt.plot([2, 1])\n\
                plt.savefig('second.svg')\n\
                import os\n\
                os.makedirs('output/tables', exist_ok=True)\n\
                open('output/tables/t.csv', 'w').write('a\\n1\\n')\n\
                print('done')\n";
    let output = llm_sandbox(&[
        "run",
        "--plots-dir",
        plots.to_str().unwrap(),
        "--artifacts-dir",
        artifacts.to_str().unwrap(),
        "-c",
        code,
    ]);
    assert_prints(&output, "done\n");
    let png = std::fs::read(plots.join("plot-1.png")).unwrap();
    let size = imagesize::blob_size(&png).expect("a PNG");
    assert_eq!((size.width, size.height), (300, 200));
    let svg = std::fs::read_to_string(plots.join("plot-2.svg")).unwrap();
    assert!(svg.contains("<svg"), "{svg}");
    assert_eq!(std::fs::read_dir(&plots).unwrap().count(), 2);
    assert_eq!(
        std::fs::read_to_string(artifacts.join("tables/t.csv")).unwrap(),
        "a\n1\n"
    );
}

#[test]
fn json_carries_plots_artifacts_and_what_was_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let code = "import matplotlib.pyplot as plt, os\n\
                plt.plot([1])\n\
                os.makedirs('output', exist_ok=True)\n\
                open('output/r.txt', 'w').write('r')\n\
                os.symlink('/etc/passwd', 'output/link')\n";
    let output = llm_sandbox(&[
        "run",
        "--json",
        "--plot-format",
        "jpeg",
        "--artifacts-dir",
        dir.path().to_str().unwrap(),
        "-c",
        code,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let value = json(&output);
    let plot = &value["plots"][0];
    assert_eq!(plot["format"], "jpeg");
    assert_eq!(
        (plot["width"].as_u64(), plot["height"].as_u64()),
        (Some(640), Some(480))
    );
    assert_eq!(plot["dpi"], 100);
    assert!(plot["content_base64"].as_str().unwrap().starts_with("/9j/")); // JPEG's magic
    let artifact = &value["artifacts"][0];
    assert_eq!(artifact["name"], "r.txt");
    assert_eq!(artifact["media_type"], "text/plain");
    assert_eq!(artifact["size"], 1);
    assert_eq!(artifact["content_base64"], "cg==");
    assert!(value["omitted"][0]["name"]
        .as_str()
        .unwrap()
        .ends_with("output/link"));
}

#[test]
fn plots_for_a_language_without_capture_fail_clearly() {
    let output = llm_sandbox(&["run", "-l", "javascript", "--plots", "-c", "console.log(1)"]);
    assert_sandbox_failure(&output, "plotting is not supported for javascript");
}
