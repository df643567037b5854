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

fn is_root() -> bool {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() == 0 }
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
    // An ordinary user's sandbox has rlimits only, and the JSON says so.
    let mut expected = vec![
        "duration_ms",
        "exit_code",
        "out_of_memory",
        "plots",
        "stderr",
        "stdout",
        "timed_out",
    ];
    if !is_root() {
        expected.push("warnings");
        let warnings = value["warnings"].as_array().unwrap();
        assert!(
            warnings.iter().any(|w| w
                .as_str()
                .unwrap()
                .starts_with("only rlimits bound this sandbox")),
            "{warnings:?}"
        );
    }
    expected.sort_unstable();
    assert_eq!(keys, expected);
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
    // Weaker isolation is said plainly: an ordinary user's sandbox has rlimits only.
    assert_eq!(
        report.contains("  warning: only rlimits bound this sandbox"),
        !is_root(),
        "{report}"
    );
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

// ---- what the red-team review of 9175b1a found in the CLI ------------------------------------

// `--artifacts-dir` never replaces or follows: a folder with files in it is refused before the
// run, and in a new folder hidden names (`.git/hooks/pre-commit`, `.bashrc`) are not written;
// what is written is 0644 whatever the sandbox's modes.
#[test]
fn artifacts_never_replace_host_files() {
    use std::os::unix::fs::PermissionsExt;
    let project = tempfile::tempdir().unwrap();
    let hook = project.path().join(".git/hooks/pre-commit");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let attack = "import os\n\
                  os.makedirs('output/.git/hooks')\n\
                  open('output/.git/hooks/pre-commit', 'w').write('#!/bin/sh\\necho PWNED\\n')\n\
                  open('output/.bashrc', 'w').write('echo PWNED')\n\
                  open('output/run.sh', 'w').write('echo run')\n\
                  os.chmod('output/run.sh', 0o6777)\n\
                  print('ran')\n";
    let into_project = llm_sandbox(&[
        "run",
        "--artifacts-dir",
        project.path().to_str().unwrap(),
        "-c",
        attack,
    ]);
    assert_sandbox_failure(&into_project, "is not empty");
    assert_eq!(
        std::fs::read_to_string(&hook).unwrap(),
        "#!/bin/sh\nexit 0\n"
    );

    let fresh = project.path().join("returned");
    let output = llm_sandbox(&[
        "run",
        "--artifacts-dir",
        fresh.to_str().unwrap(),
        "-c",
        attack,
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "ran\n");
    let messages = stderr(&output);
    assert!(
        messages.contains("not returned: \".git/hooks/pre-commit\"")
            && messages.contains("not returned: \".bashrc\""),
        "{messages}"
    );
    let written: Vec<_> = std::fs::read_dir(&fresh)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(written, ["run.sh"]);
    let mode = std::fs::metadata(fresh.join("run.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777 & !0o022, 0o644, "{mode:o}");
}

// Names the sandbox chooses cannot turn its run into a sandbox failure (125) or hide its
// output: a plot whose described format is a path, and an artifact whose path is too long once
// joined to the folder, become omitted entries; the output and exit code come through.
#[test]
fn crafted_names_leave_the_output_and_exit_code_intact() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("a".repeat(200)).join("b".repeat(200));
    std::fs::create_dir_all(&deep).unwrap();
    let (plots, artifacts) = (deep.join("plots"), deep.join("artifacts"));
    let code = "import os\n\
                plots = os.path.join(os.path.dirname(__file__), 'plots')\n\
                os.makedirs(plots, exist_ok=True)\n\
                open(os.path.join(plots, '1.png'), 'wb').write(b'x')\n\
                open(os.path.join(plots, '1.json'), 'w').write('{\"format\": \"png/../../../evil\"}')\n\
                os.makedirs('output', exist_ok=True)\n\
                os.chdir('output')\n\
                for _ in range(15):\n\
                \x20   os.mkdir('d' * 250)\n\
                \x20   os.chdir('d' * 250)\n\
                open('deep.txt', 'w').write('deep')\n\
                print('output first')\n\
                raise SystemExit(3)\n";
    let output = llm_sandbox(&[
        "run",
        "--plots-dir",
        plots.to_str().unwrap(),
        "--artifacts-dir",
        artifacts.to_str().unwrap(),
        "-c",
        code,
    ]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(stdout(&output), "output first\n");
    let messages = stderr(&output);
    assert!(messages.contains("not returned: \"plot 1\""), "{messages}");
    assert!(messages.contains("deep.txt"), "{messages}");
    assert!(!dir.path().join("evil").exists());
}

/// Runs the binary with stdout and stderr on a new pseudo-terminal that is also its
/// controlling terminal; returns what the terminal received and the exit code.
fn on_terminal(args: &[&str]) -> (Vec<u8>, Option<i32>) {
    use std::io::Read;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::process::CommandExt;
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty fills two descriptors, owned at once.
    let opened = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            std::ptr::null(),
        )
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    let tty = slave.as_raw_fd();
    let mut command = Command::new(BIN);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()));
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 || libc::ioctl(tty, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().unwrap();
    drop(slave);
    drop(command);
    let status = child.wait().unwrap();
    let mut received = Vec::new();
    let mut master = std::fs::File::from(master);
    let _ = master.read_to_end(&mut received); // EIO once the terminal has no other end
    (received, status.code())
}

// On a terminal the program's control characters are shown, not obeyed (OSC 52 clipboard,
// titles, clearing, fake CLI lines); --raw passes them through. The sandbox has no controlling
// terminal, even when the CLI has one.
#[test]
fn a_terminal_sees_control_characters_escaped_and_the_sandbox_has_no_terminal() {
    let code = "import sys\n\
                fields = open('/proc/self/stat').read().rsplit(')', 1)[1].split()\n\
                print('tty', fields[4])\n\
                sys.stdout.write('\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J\\n')\n\
                sys.stderr.write('\\x1b]0;title\\x07\\rllm-sandbox: fake\\n')\n";
    let (shown, code_status) = on_terminal(&["run", "-c", code]);
    assert_eq!(code_status, Some(0));
    let text = String::from_utf8_lossy(&shown);
    assert!(!shown.contains(&0x1b) && !shown.contains(&0x07), "{text:?}");
    assert!(
        text.contains("\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J"),
        "{text:?}"
    );
    assert!(
        text.contains("tty 0\r\n"),
        "the sandbox has a controlling terminal: {text:?}"
    );
    let (raw, _) = on_terminal(&["run", "--raw", "-c", code]);
    assert!(
        raw.windows(5).any(|w| w == b"\x1b]52;"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
}

// An ordinary user cannot drop its supplementary groups in a user namespace: the caller is
// told, in --json's warnings (host files readable by those groups stay readable).
#[test]
fn kept_supplementary_groups_are_warned_about() {
    if !is_root() || !std::path::Path::new("/usr/bin/setpriv").exists() {
        eprintln!("SKIPPED: needs root and setpriv to run the CLI as a user with extra groups");
        return;
    }
    let output = Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--groups=4,100", "--"])
        .arg(BIN)
        .args(["run", "--json", "-c", "pass"])
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let value = json(&output);
    let warnings = value["warnings"].as_array().unwrap();
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("the caller's supplementary groups (adm, users)")),
        "{warnings:?}"
    );
}
