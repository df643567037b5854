//! One conformance suite for every backend.
//!
//! Each case runs against every backend in `LLM_SANDBOX_BACKENDS` (comma separated; default
//! `native`). A listed backend that cannot be opened fails the suite when
//! `LLM_SANDBOX_REQUIRE_BACKENDS=1` (as in CI); otherwise it is skipped with a loud message.

use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::{backends, open};
use llm_sandbox::language::{RunContext, Toolchain};
use llm_sandbox::{
    BackendKind, Error, LanguageHandler, NetworkMode, RunOptions, SandboxSession,
    SandboxSessionBuilder,
};

fn lang(name: &str) -> SandboxSessionBuilder {
    SandboxSession::builder().lang(name)
}

/// (language, hello, exit 3 with "oops" on stderr, echo stdin, print $GREETING, write state, read state, compile error)
struct Programs {
    lang: &'static str,
    hello: &'static str,
    fail: &'static str,
    echo_stdin: &'static str,
    print_env: &'static str,
    write_state: &'static str,
    read_state: &'static str,
    compile_error: Option<&'static str>,
}

const PROGRAMS: [Programs; 6] = [
    Programs {
        lang: "python",
        hello: "print('hello from python')",
        fail: "import sys\nsys.stderr.write('oops\\n')\nsys.exit(3)",
        echo_stdin: "import sys\nprint(sys.stdin.read().upper(), end='')",
        print_env: "import os\nprint(os.environ['GREETING'])",
        write_state: "open('state.txt', 'w').write('kept')",
        read_state: "print(open('state.txt').read())",
        compile_error: None,
    },
    Programs {
        lang: "javascript",
        hello: "console.log('hello from javascript')",
        fail: "process.stderr.write('oops\\n'); process.exit(3)",
        echo_stdin: "process.stdout.write(require('fs').readFileSync(0, 'utf8').toUpperCase())",
        print_env: "console.log(process.env.GREETING)",
        write_state: "require('fs').writeFileSync('state.txt', 'kept')",
        read_state: "console.log(require('fs').readFileSync('state.txt', 'utf8'))",
        compile_error: None,
    },
    Programs {
        lang: "java",
        hello: "public class Main { public static void main(String[] a) { System.out.println(\"hello from java\"); } }",
        fail: "public class Main { public static void main(String[] a) { System.err.println(\"oops\"); System.exit(3); } }",
        echo_stdin: "public class Main { public static void main(String[] a) throws Exception { System.out.print(new String(System.in.readAllBytes()).toUpperCase()); } }",
        print_env: "public class Main { public static void main(String[] a) { System.out.println(System.getenv(\"GREETING\")); } }",
        write_state: "import java.nio.file.*; public class Main { public static void main(String[] a) throws Exception { Files.writeString(Path.of(\"state.txt\"), \"kept\"); } }",
        read_state: "import java.nio.file.*; public class Main { public static void main(String[] a) throws Exception { System.out.println(Files.readString(Path.of(\"state.txt\"))); } }",
        compile_error: Some("public class Main { public static void main(String[] a) { int x = ; } }"),
    },
    Programs {
        lang: "cpp",
        hello: "#include <iostream>\nint main() { std::cout << \"hello from cpp\" << std::endl; }",
        fail: "#include <iostream>\nint main() { std::cerr << \"oops\" << std::endl; return 3; }",
        echo_stdin: "#include <iostream>\n#include <cctype>\nint main() { char c; while (std::cin.get(c)) std::cout << (char)std::toupper(c); }",
        print_env: "#include <iostream>\n#include <cstdlib>\nint main() { std::cout << std::getenv(\"GREETING\") << std::endl; }",
        write_state: "#include <fstream>\nint main() { std::ofstream(\"state.txt\") << \"kept\"; }",
        read_state: "#include <fstream>\n#include <iostream>\nint main() { std::ifstream f(\"state.txt\"); std::cout << f.rdbuf() << std::endl; }",
        compile_error: Some("int main( {"),
    },
    Programs {
        lang: "go",
        hello: "package main\nimport \"fmt\"\nfunc main() { fmt.Println(\"hello from go\") }",
        fail: "package main\nimport (\"fmt\"; \"os\")\nfunc main() { fmt.Fprintln(os.Stderr, \"oops\"); os.Exit(3) }",
        echo_stdin: "package main\nimport (\"fmt\"; \"io\"; \"os\"; \"strings\")\nfunc main() { b, _ := io.ReadAll(os.Stdin); fmt.Print(strings.ToUpper(string(b))) }",
        print_env: "package main\nimport (\"fmt\"; \"os\")\nfunc main() { fmt.Println(os.Getenv(\"GREETING\")) }",
        write_state: "package main\nimport \"os\"\nfunc main() { os.WriteFile(\"state.txt\", []byte(\"kept\"), 0644) }",
        read_state: "package main\nimport (\"fmt\"; \"os\")\nfunc main() { b, _ := os.ReadFile(\"state.txt\"); fmt.Println(string(b)) }",
        compile_error: Some("package main\nfunc main() { undefinedFunction() }"),
    },
    Programs {
        lang: "ruby",
        hello: "puts 'hello from ruby'",
        fail: "$stderr.puts 'oops'\nexit 3",
        echo_stdin: "print $stdin.read.upcase",
        print_env: "puts ENV['GREETING']",
        write_state: "File.write('state.txt', 'kept')",
        read_state: "puts File.read('state.txt')",
        compile_error: None,
    },
];

async fn check_language(programs: &Programs) {
    for backend in backends() {
        let builder = lang(programs.lang).env("GREETING", "hi there");
        let Some(session) = open(backend, builder).await else {
            continue;
        };
        let context = format!("{} on {backend}", programs.lang);

        let hello = session.run(programs.hello).await.unwrap();
        assert_eq!(
            hello.stdout,
            format!("hello from {}\n", programs.lang),
            "{context}: {hello:?}"
        );
        assert_eq!(hello.exit_code, 0, "{context}: {hello:?}");
        assert!(hello.success());

        let fail = session.run(programs.fail).await.unwrap();
        assert_eq!(fail.exit_code, 3, "{context}: {fail:?}");
        assert_eq!(fail.stderr.trim(), "oops", "{context}: {fail:?}");

        let options = RunOptions {
            stdin: Some(b"abc\ndef".to_vec()),
            ..Default::default()
        };
        let echo = session
            .run_with(programs.echo_stdin, options)
            .await
            .unwrap();
        assert_eq!(echo.stdout, "ABC\nDEF", "{context}: {echo:?}");

        let env = session.run(programs.print_env).await.unwrap();
        assert_eq!(env.stdout, "hi there\n", "{context}: {env:?}");
        let options = RunOptions {
            env: vec![("GREETING".into(), "per run".into())],
            ..Default::default()
        };
        let env = session.run_with(programs.print_env, options).await.unwrap();
        assert_eq!(env.stdout, "per run\n", "{context}: {env:?}");

        let written = session.run(programs.write_state).await.unwrap();
        assert!(written.success(), "{context}: {written:?}");
        let read = session.run(programs.read_state).await.unwrap();
        assert_eq!(read.stdout, "kept\n", "{context}: {read:?}");

        if let Some(broken) = programs.compile_error {
            let compiled = session.run(broken).await.unwrap();
            assert_ne!(compiled.exit_code, 0, "{context}: {compiled:?}");
            assert!(
                !compiled.timed_out && !compiled.stderr.is_empty(),
                "{context}: {compiled:?}"
            );
        }
        // Code files do not pile up between runs.
        let leftovers = session
            .execute_command(&["find", ".llm-sandbox", "-maxdepth", "1", "-name", "run-*"])
            .await
            .unwrap();
        assert_eq!(leftovers.stdout, "", "{context}: {leftovers:?}");
        session.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn python_works() {
    check_language(&PROGRAMS[0]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_works() {
    check_language(&PROGRAMS[1]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn java_works() {
    check_language(&PROGRAMS[2]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cpp_works() {
    check_language(&PROGRAMS[3]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn go_works() {
    check_language(&PROGRAMS[4]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ruby_works() {
    check_language(&PROGRAMS[5]).await;
}

/// How long past its timeout a run may take to be killed: the native backend kills from inside
/// at once; a container backend first has to start a killing exec through the engine.
fn kill_allowance(backend: BackendKind) -> Duration {
    match backend {
        BackendKind::Native => Duration::from_millis(500),
        _ => Duration::from_millis(2500),
    }
}

/// Python that counts the processes of the sandbox user other than itself and its ancestors
/// (native: init; containers: the exec wrapper), i.e. what earlier runs left behind.
const COUNT_LEFTOVERS: &str = r#"
import os
def parent(pid):
    return int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])
mine = {os.getpid()}
pid = os.getpid()
while pid > 1:
    pid = parent(pid)
    mine.add(pid)
others = [p for p in os.listdir('/proc') if p.isdigit() and int(p) not in mine and os.stat('/proc/' + p).st_uid == os.getuid()]
print(len(others))
"#;

/// Nothing of earlier runs is still running in the sandbox.
async fn assert_only_init_remains(session: &SandboxSession, context: &str) {
    let seen = session.run(COUNT_LEFTOVERS).await.unwrap();
    assert_eq!(
        seen.stdout.trim(),
        "0",
        "{context}: processes left behind: {seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_kills_an_infinite_loop_and_the_session_goes_on() {
    for backend in backends() {
        let Some(session) = open(
            backend,
            lang("python").execution_timeout(Duration::from_secs(1)),
        )
        .await
        else {
            continue;
        };
        let started = Instant::now();
        let result = session.run("while True:\n    pass").await.unwrap();
        let elapsed = started.elapsed();
        assert!(result.timed_out, "{backend}: {result:?}");
        assert!(!result.success());
        assert!(
            elapsed < Duration::from_secs(1) + kill_allowance(backend),
            "{backend}: killed after {elapsed:?}"
        );
        assert_only_init_remains(&session, backend.name()).await;
        assert_eq!(session.run("print(2 + 2)").await.unwrap().stdout, "4\n");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn timeout_kills_detached_children_that_ignore_sigterm() {
    let code = r#"
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
for _ in range(3):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            while True:
                time.sleep(1)
        os._exit(0)
print('forked', flush=True)
while True:
    time.sleep(1)
"#;
    for backend in backends() {
        let Some(session) = open(backend, lang("python")).await else {
            continue;
        };
        // Long enough for the forks to happen even on a loaded machine.
        let timeout = Duration::from_secs(3);
        let options = RunOptions {
            timeout: Some(timeout),
            ..Default::default()
        };
        let started = Instant::now();
        let result = session.run_with(code, options).await.unwrap();
        let elapsed = started.elapsed();
        assert!(result.timed_out, "{backend}: {result:?}");
        assert_eq!(
            result.stdout, "forked\n",
            "{backend}: output before the timeout is kept"
        );
        assert!(
            elapsed < timeout + kill_allowance(backend),
            "{backend}: killed after {elapsed:?}"
        );
        assert_only_init_remains(&session, backend.name()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn background_processes_end_with_their_run() {
    for backend in backends() {
        let Some(session) = open(backend, lang("python")).await else {
            continue;
        };
        let result = session
            .execute_shell("sleep 100 & echo started")
            .await
            .unwrap();
        assert_eq!(result.stdout, "started\n");
        assert_only_init_remains(&session, backend.name()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn session_timeout_closes_the_session() {
    for backend in backends() {
        let builder = lang("python").session_timeout(Duration::from_secs(3));
        let Some(session) = open(backend, builder).await else {
            continue;
        };
        assert_eq!(
            session.run("print('early')").await.unwrap().stdout,
            "early\n"
        );
        // A run that would outlast the session is cut at the session's end.
        let error = session
            .run("import time\ntime.sleep(30)")
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::SessionExpired { .. }),
            "{backend}: {error}"
        );
        let error = session.run("print('late')").await.unwrap_err();
        assert!(
            matches!(error, Error::SessionExpired { .. }),
            "{backend}: {error}"
        );
        assert!(error.to_string().contains("open a new session"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_session_expires_on_its_own() {
    for backend in backends() {
        let builder = lang("python").session_timeout(Duration::from_millis(300));
        let Some(session) = open(backend, builder).await else {
            continue;
        };
        tokio::time::sleep(Duration::from_millis(600)).await;
        let error = session.run("print(1)").await.unwrap_err();
        assert!(
            matches!(error, Error::SessionExpired { .. }),
            "{backend}: {error}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_stops_a_memory_hog() {
    for backend in backends() {
        let builder = lang("python").memory(Some(128 << 20));
        let Some(session) = open(backend, builder).await else {
            continue;
        };
        let result = session
            .run("x = bytearray(512 * 1024 * 1024)\nprint('allocated')")
            .await
            .unwrap();
        assert!(!result.success(), "{backend}: {result:?}");
        assert!(
            !result.stdout.contains("allocated"),
            "{backend}: {result:?}"
        );
        assert!(
            result.out_of_memory || result.stderr.contains("MemoryError"),
            "{backend}: {result:?}"
        );
        assert_eq!(
            session.run("print('alive')").await.unwrap().stdout,
            "alive\n"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pids_limit_contains_a_fork_bomb() {
    let bomb =
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass";
    for backend in backends() {
        let builder = lang("python")
            .pids(Some(32))
            .execution_timeout(Duration::from_secs(3));
        let Some(session) = open(backend, builder).await else {
            continue;
        };
        let result = session.run(bomb).await.unwrap();
        assert!(result.timed_out, "{backend}: {result:?}");
        assert_only_init_remains(&session, backend.name()).await;
        // Threads count too: more than the limit cannot start.
        let threads = "import threading, time\nn = 0\ntry:\n    for _ in range(100):\n        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()\n        n += 1\nexcept RuntimeError:\n    pass\nprint(n)";
        let result = session.run(threads).await.unwrap();
        let started: u32 = result
            .stdout
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{backend}: {result:?}"));
        assert!(
            started < 32,
            "{backend}: {started} threads started under a limit of 32"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn network_is_off_by_default() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n    print('connected')\nexcept OSError as e:\n    print('refused')\ntry:\n    socket.getaddrinfo('pypi.org', 443)\n    print('resolved')\nexcept OSError:\n    print('no dns')\ns = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print('loopback ok')"
    );
    for backend in backends() {
        let Some(session) = open(backend, lang("python")).await else {
            continue;
        };
        let result = session.run(&code).await.unwrap();
        assert_eq!(
            result.stdout, "refused\nno dns\nloopback ok\n",
            "{backend}: {result:?}"
        );
        assert!(
            listener.accept().is_err(),
            "{backend}: the host's listener was reached"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn host_files_are_neither_readable_nor_writable() {
    let secret_dir = tempfile::tempdir_in("/tmp").unwrap();
    let secret = secret_dir.path().join("secret.txt");
    std::fs::write(&secret, "host secret").unwrap();
    let host_homes: Vec<String> = std::fs::read_dir("/home")
        .map(|entries| {
            entries
                .filter_map(|e| Some(e.ok()?.file_name().to_str()?.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let code = format!(
        r#"
import os
def readable(path):
    try:
        open(path).read() if os.path.isfile(path) else os.listdir(path)
        return True
    except OSError:
        return False
checks = {{
    'host tmp file': os.path.exists({secret:?}),
    'root home': readable('/root'),
    'host home dirs': any(os.path.exists('/home/' + name) for name in {host_homes:?}),
    'shadow': readable('/etc/shadow'),
    'host tmp listing': len(os.listdir('/tmp')) > 1,
}}
for path in ['/usr/bin/evil', '/etc/evil', '/evil', '/proc/sysrq-trigger']:
    try:
        open(path, 'w').write('x')
        checks['wrote ' + path] = True
    except OSError:
        pass
print(sorted(k for k, v in checks.items() if v))
"#
    );
    for backend in backends() {
        let Some(session) = open(backend, lang("python")).await else {
            continue;
        };
        let result = session.run(&code).await.unwrap();
        assert_eq!(result.stdout, "[]\n", "{backend}: {result:?}");
    }
    assert!(!std::path::Path::new("/usr/bin/evil").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn code_runs_unprivileged() {
    let code = "import os\nst = open('/proc/self/status').read()\ncaps = [l.split()[1] for l in st.splitlines() if l.startswith(('CapEff', 'CapPrm', 'CapBnd'))]\nnnp = [l.split()[1] for l in st.splitlines() if l.startswith('NoNewPrivs')]\nsec = [l.split()[1] for l in st.splitlines() if l.startswith('Seccomp:')]\nprint(os.getuid(), caps, nnp, sec)";
    for backend in backends() {
        let Some(session) = open(backend, lang("python")).await else {
            continue;
        };
        let result = session.run(code).await.unwrap();
        assert_eq!(
            result.stdout,
            "1000 ['0000000000000000', '0000000000000000', '0000000000000000'] ['1'] ['2']\n",
            "{backend}: {result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn output_is_capped_and_marked() {
    for backend in backends() {
        let Some(session) = open(backend, lang("python").output_limit(1000)).await else {
            continue;
        };
        let result = session
            .run("import sys\nsys.stdout.write('x' * 5_000_000)\nsys.stderr.write('y' * 5000)")
            .await
            .unwrap();
        assert!(result.success(), "{backend}: {result:?}");
        assert_eq!(
            result.stdout,
            format!(
                "{}\n[llm-sandbox: output truncated after 1000 bytes]\n",
                "x".repeat(1000)
            )
        );
        assert!(
            result.stderr.starts_with(&"y".repeat(1000)) && result.stderr.contains("truncated"),
            "{backend}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_utf8_output_is_replaced() {
    for backend in backends() {
        let Some(session) = open(backend, lang("python")).await else {
            continue;
        };
        let result = session
            .run("import sys\nsys.stdout.buffer.write(b'ok \\xff\\xfe end')")
            .await
            .unwrap();
        assert_eq!(
            result.stdout, "ok \u{fffd}\u{fffd} end",
            "{backend}: {result:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_round_trip_with_binary_files_and_directories() {
    let host = tempfile::tempdir().unwrap();
    let binary: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    let input = host.path().join("input");
    std::fs::create_dir_all(input.join("nested")).unwrap();
    std::fs::write(input.join("data.bin"), &binary).unwrap();
    std::fs::write(input.join("nested/note.txt"), "note").unwrap();
    for backend in backends() {
        let Some(session) = open(backend, lang("python")).await else {
            continue;
        };
        session
            .copy_to_runtime(input.join("data.bin"), "data.bin")
            .await
            .unwrap();
        session.copy_to_runtime(&input, "tree").await.unwrap();
        let check = "import hashlib\nprint(hashlib.sha256(open('data.bin','rb').read()).hexdigest())\nprint(open('tree/nested/note.txt').read())\nimport os\nos.makedirs('out/sub')\nopen('out/sub/result.bin','wb').write(bytes(range(256)) * 10)";
        let result = session.run(check).await.unwrap();
        let digest = format!("{:x}", Sha256Digest::of(&binary));
        assert_eq!(
            result.stdout,
            format!("{digest}\nnote\n"),
            "{backend}: {result:?}"
        );

        let back = host.path().join(format!("back-{backend}"));
        session.copy_from_runtime("data.bin", &back).await.unwrap();
        assert_eq!(std::fs::read(&back).unwrap(), binary);
        let out = host.path().join(format!("out-{backend}"));
        session.copy_from_runtime("out", &out).await.unwrap();
        let expected: Vec<u8> = (0..=255u8).collect::<Vec<_>>().repeat(10);
        assert_eq!(std::fs::read(out.join("sub/result.bin")).unwrap(), expected);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn copies_refuse_symlinks_and_hostile_paths() {
    let host = tempfile::tempdir().unwrap();
    for backend in backends() {
        let Some(session) = open(backend, lang("python")).await else {
            continue;
        };
        session.run("import os\nos.symlink('/etc/passwd', 'link')\nos.makedirs('d')\nos.symlink('/etc', 'd/escape')").await.unwrap();
        let error = session
            .copy_from_runtime("link", host.path().join("link"))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("symbolic link"),
            "{backend}: {error}"
        );
        let error = session
            .copy_from_runtime("d", host.path().join("d"))
            .await
            .unwrap_err();
        assert!(error.to_string().contains("refusing"), "{backend}: {error}");
        assert!(!host.path().join("link").exists());
        for bad in ["../etc/x", "/sandbox/../etc", "a//b"] {
            let error = session
                .copy_from_runtime(bad, host.path().join("x"))
                .await
                .unwrap_err();
            assert!(
                matches!(error, Error::InvalidArgument(_)),
                "{backend}: {bad}: {error}"
            );
            let error = session.copy_to_runtime(host.path(), bad).await.unwrap_err();
            assert!(
                matches!(error, Error::InvalidArgument(_)),
                "{backend}: {bad}: {error}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_run_without_a_shell_unless_asked() {
    for backend in backends() {
        let Some(session) = open(backend, lang("python")).await else {
            continue;
        };
        let result = session
            .execute_command(&["echo", "a; echo b", "$HOME"])
            .await
            .unwrap();
        assert_eq!(result.stdout, "a; echo b $HOME\n", "{backend}");
        let result = session.execute_shell("echo $HOME; exit 4").await.unwrap();
        assert_eq!(
            (result.stdout.as_str(), result.exit_code),
            ("/sandbox\n", 4),
            "{backend}"
        );
        let unbounded = llm_sandbox::CommandOptions {
            timeout: Some(Duration::MAX),
            ..Default::default()
        };
        let result = session
            .execute_command_with(&["true"], unbounded)
            .await
            .unwrap();
        assert!(
            result.success(),
            "{backend}: an unbounded timeout works: {result:?}"
        );
        let result = session.execute_command(&["no-such-program"]).await.unwrap();
        assert_eq!(result.exit_code, 127, "{backend}: {result:?}");
        assert!(result.stderr.contains("not found"), "{backend}: {result:?}");
        let result = session
            .execute_command_with(
                &["sleep", "10"],
                llm_sandbox::CommandOptions {
                    timeout: Some(Duration::from_millis(300)),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(result.timed_out, "{backend}: {result:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_sessions_at_once() {
    for backend in backends() {
        let runs = (0..20).map(|i| async move {
            let session = open(backend, lang("python")).await?;
            let result = session.run(&format!("print({i} * {i})")).await.unwrap();
            session.close().await.unwrap();
            Some((i, result.stdout))
        });
        for outcome in futures_join_all(runs).await {
            let Some((i, stdout)) = outcome else { continue };
            assert_eq!(stdout, format!("{}\n", i * i), "{backend}");
        }
    }
}

/// A user-registered language, used through a session like a built-in one.
#[derive(Debug)]
struct Shell;

impl LanguageHandler for Shell {
    fn name(&self) -> &str {
        "shell"
    }
    fn file_extension(&self) -> &str {
        "sh"
    }
    fn toolchain(&self) -> Vec<Toolchain> {
        vec![Toolchain {
            binary: "sh",
            package: "dash",
        }]
    }
    fn run_command(&self, ctx: &RunContext) -> Vec<String> {
        vec!["sh".into(), ctx.source_path.clone()]
    }
}

#[derive(Debug)]
struct Missing;

impl LanguageHandler for Missing {
    fn name(&self) -> &str {
        "missing"
    }
    fn file_extension(&self) -> &str {
        "missing"
    }
    fn toolchain(&self) -> Vec<Toolchain> {
        vec![Toolchain {
            binary: "no-such-compiler",
            package: "no-such-package",
        }]
    }
    fn run_command(&self, _: &RunContext) -> Vec<String> {
        vec!["no-such-compiler".into()]
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_languages_can_be_registered_and_used() {
    for backend in backends() {
        // A custom language has no image of its own: container backends use any image with sh.
        let builder = SandboxSession::builder()
            .register_language(Arc::new(Shell))
            .lang("shell")
            .image("llm-sandbox/python:latest");
        let Some(session) = open(backend, builder).await else {
            continue;
        };
        let result = session.run("echo \"custom $((6 * 7))\"").await.unwrap();
        assert_eq!(result.stdout, "custom 42\n", "{backend}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_toolchain_and_language_say_what_to_do() {
    let builder = SandboxSession::builder()
        .register_language(Arc::new(Missing))
        .lang("missing");
    let error = builder.open().await.unwrap_err();
    assert!(matches!(error, Error::ToolchainMissing { .. }), "{error}");
    assert!(
        error
            .to_string()
            .contains("apt-get install no-such-package"),
        "{error}"
    );
    let error = lang("cobol").open().await.unwrap_err();
    assert!(
        matches!(error, Error::LanguageNotSupported { .. }),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn host_network_is_opt_in() {
    for backend in backends() {
        let Some(session) = open(backend, lang("python").network(NetworkMode::Host)).await else {
            continue;
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let code = format!("import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')");
        let result = session.run(&code).await.unwrap();
        assert_eq!(result.stdout, "connected\n", "{backend}: {result:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn disk_limit_bounds_the_writable_area() {
    for backend in backends() {
        let Some(session) = open(backend, lang("python").disk(Some(8 << 20)).memory(None)).await
        else {
            continue;
        };
        // /tmp is bounded on every backend (a container's workdir volume may not be).
        let code = "try:\n    open('/tmp/big', 'wb').write(b'x' * (32 << 20))\n    print('wrote')\nexcept OSError as e:\n    print('full', e.errno)";
        let result = session.run(code).await.unwrap();
        assert_eq!(result.stdout, "full 28\n", "{backend}: {result:?}");
    }
}

/// Joins futures concurrently without an extra dependency.
async fn futures_join_all<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut outputs = Vec::new();
    for handle in handles {
        outputs.push(handle.await.unwrap());
    }
    outputs
}

/// SHA-256 through the host's sha256sum, to compare file contents by digest.
struct Sha256Digest(String);

impl Sha256Digest {
    fn of(data: &[u8]) -> Self {
        use std::io::Write;
        let mut child = std::process::Command::new("sha256sum")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(data).unwrap();
        let output = child.wait_with_output().unwrap();
        Sha256Digest(
            String::from_utf8(output.stdout)
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .to_string(),
        )
    }
}

impl std::fmt::LowerHex for Sha256Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn installs_reach_the_network_only_when_allowed_and_code_never_does() {
    for backend in backends() {
        let builder = lang("python").allow_install_network(true);
        let Some(session) = open(backend, builder).await else {
            continue;
        };
        session.install(&["six==1.16.0"]).await.unwrap();
        let code = "import six, socket\nprint(six.__version__)\ntry:\n    socket.getaddrinfo('pypi.org', 443)\n    print('online')\nexcept OSError:\n    print('offline')";
        let result = session.run(code).await.unwrap();
        assert_eq!(result.stdout, "1.16.0\noffline\n", "{backend}: {result:?}");
        let error = session
            .install(&["--index-url=http://evil"])
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::InvalidArgument(_)),
            "{backend}: {error}"
        );

        let Some(offline) = open(backend, lang("python")).await else {
            continue;
        };
        let error = offline.install(&["six"]).await.unwrap_err();
        assert!(
            error.to_string().contains("allow_install_network"),
            "{backend}: {error}"
        );
    }
}

/// Whether `engine` (docker or podman) has image `reference`.
fn engine_has_image(backend: BackendKind, reference: &str) -> bool {
    std::process::Command::new(format!("/usr/bin/{}", backend.name()))
        .args(["image", "inspect", reference])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_build_from_a_dockerfile_and_commit_their_state() {
    for backend in backends() {
        if backend == BackendKind::Native {
            continue; // images are a container matter
        }
        let context = tempfile::tempdir().unwrap();
        std::fs::write(context.path().join("greeting.txt"), "built\n").unwrap();
        std::fs::write(
            context.path().join("Dockerfile"),
            "FROM llm-sandbox/python:latest\nCOPY greeting.txt /greeting.txt\n",
        )
        .unwrap();
        let progress = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = progress.clone();
        let builder = lang("python")
            .dockerfile(context.path().join("Dockerfile"))
            .commit_container(true)
            .on_progress(move |step| seen.lock().unwrap().push(step.clone()));
        let Some(session) = open(backend, builder).await else {
            continue;
        };
        let result = session
            .run(
                "print(open('/greeting.txt').read(), end='')\nopen('state.txt', 'w').write('kept')",
            )
            .await
            .unwrap();
        assert_eq!(result.stdout, "built\n", "{backend}: {result:?}");
        let steps = progress.lock().unwrap().clone();
        assert!(
            steps
                .iter()
                .any(|p| p.task.contains("building") && p.message.contains("COPY")),
            "{backend}: no build progress: {steps:?}"
        );
        assert!(
            steps.last().is_some_and(|p| p.done),
            "{backend}: the build never finished: {steps:?}"
        );
        let report = session.close().await.unwrap();
        let committed = report
            .committed_image
            .unwrap_or_else(|| panic!("{backend}: nothing committed"));
        assert!(committed.contains("-committed:"), "{backend}: {committed}");

        // The committed image holds the session's files; the built image was removed.
        let Some(reopened) = open(backend, lang("python").image(committed.clone())).await else {
            continue;
        };
        let result = reopened
            .run("print(open('state.txt').read())")
            .await
            .unwrap();
        assert_eq!(result.stdout, "kept\n", "{backend}: {result:?}");
        reopened.close().await.unwrap();
        let _ = std::process::Command::new(format!("/usr/bin/{}", backend.name()))
            .args(["rmi", "-f", &committed])
            .output();
        let images = std::process::Command::new(format!("/usr/bin/{}", backend.name()))
            .args(["images", "--format", "{{.Repository}}"])
            .output()
            .unwrap();
        assert!(
            !engine_has_image(backend, &committed),
            "{backend}: could not clean up {committed}"
        );
        let listing = String::from_utf8_lossy(&images.stdout);
        assert!(
            !listing.contains("llm-sandbox-built/"),
            "{backend}: the built image was kept: {listing}"
        );
    }
}
