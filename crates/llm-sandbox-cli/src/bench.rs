//! `llm-sandbox bench`: how fast the sandboxes are, each figure beside its floor (the same work
//! done without a sandbox).

use std::path::Path;
use std::process::{Command, ExitCode};
use std::sync::{Arc, Barrier};
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use clap::Args;
use llm_sandbox::backend::registry::probe;
use llm_sandbox::language::{find_program, RunContext};
use llm_sandbox::{
    BackendKind, ExecutionResult, LanguageHandler, LanguageRegistry, SandboxSession,
    DEFAULT_SEARCH_PATH,
};

/// The snippet of the throughput, memory and container measures.
const PYTHON: &str = "print('hello')";
/// What every snippet prints.
const HELLO: &str = "hello\n";
/// Idle sessions opened together to measure the memory of one.
const MEMORY_SESSIONS: usize = 10;

/// Options of `llm-sandbox bench`.
#[derive(Args)]
pub struct BenchArgs {
    /// Samples per measure.
    #[arg(long, value_name = "N", default_value_t = 20)]
    iterations: usize,

    /// The backends to measure [default: native, plus docker and podman when reachable].
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    backends: Vec<BackendKind>,

    /// The languages of the native hello-world measures.
    #[arg(
        long,
        value_name = "LANG,...",
        value_delimiter = ',',
        default_value = "python"
    )]
    languages: Vec<String>,

    /// Snippets per throughput sample, shared among the parallel sessions.
    #[arg(long, value_name = "N", default_value_t = 200)]
    snippets: usize,
}

/// One line of the table: the samples of a measure and, when it has one, of its floor.
struct Row {
    measure: String,
    samples: Vec<f64>,
    floor: Option<Vec<f64>>,
}

/// Runs every measure and prints the table.
pub async fn bench(args: &BenchArgs) -> Result<ExitCode> {
    ensure!(
        args.iterations > 0 && args.snippets > 0,
        "--iterations and --snippets must be at least 1"
    );
    let backends = if args.backends.is_empty() {
        reachable_backends().await
    } else {
        args.backends.clone()
    };
    let mut rows = Vec::new();
    for kind in backends {
        match kind {
            BackendKind::Native => {
                for lang in &args.languages {
                    native(args.iterations, &Hello::new(lang)?, &mut rows).await?;
                }
                throughput(args, &mut rows)?;
                memory(args.iterations, &mut rows).await?;
            }
            BackendKind::Docker | BackendKind::Podman => {
                container(args.iterations, kind, &mut rows).await?
            }
            other => bail!("cannot bench the {other} backend; use native, docker or podman"),
        }
    }
    print_table(&rows);
    Ok(ExitCode::SUCCESS)
}

/// Native, plus the container backends whose engine answers.
async fn reachable_backends() -> Vec<BackendKind> {
    let mut backends = vec![BackendKind::Native];
    for kind in [BackendKind::Docker, BackendKind::Podman] {
        if probe(kind).await.is_ok() {
            backends.push(kind);
        }
    }
    backends
}

/// Hello world in one language, and how to run it without a sandbox.
struct Hello {
    handler: Arc<dyn LanguageHandler>,
    code: &'static str,
    /// The bare interpreter and its flag for code on the command line; `None`: compile and run
    /// the file with the host toolchain, as the language handler does.
    interpreter: Option<[&'static str; 2]>,
}

impl Hello {
    fn new(lang: &str) -> Result<Hello> {
        let handler = LanguageRegistry::new().get(lang)?;
        let (code, interpreter) = match handler.name() {
            "python" => (PYTHON, Some(["/usr/bin/python3", "-c"])),
            "javascript" => ("console.log('hello')", Some(["node", "-e"])),
            "ruby" => ("puts 'hello'", Some(["ruby", "-e"])),
            "java" => (
                "public class Main { public static void main(String[] a) { System.out.println(\"hello\"); } }",
                None,
            ),
            "cpp" => ("#include <cstdio>\nint main() { std::puts(\"hello\"); }\n", None),
            "go" => (
                "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n",
                None,
            ),
            other => bail!("no hello world for {other}"),
        };
        Ok(Hello {
            handler,
            code,
            interpreter,
        })
    }

    fn name(&self) -> &str {
        self.handler.name()
    }

    /// Milliseconds to run the code without a sandbox.
    fn bare(&self) -> Result<f64> {
        let start = Instant::now();
        match self.interpreter {
            Some([program, flag]) => {
                // The interpreter the sandbox would run, not whatever comes first on PATH.
                let program = find_program(&DEFAULT_SEARCH_PATH, program)
                    .ok_or_else(|| anyhow::anyhow!("{program} is not installed"))?;
                expect_hello(clean(&mut Command::new(program)).args([flag, self.code]))?
            }
            None => {
                let dir = tempfile::tempdir()?;
                let dir_name = dir.path().to_string_lossy().into_owned();
                let ctx = RunContext {
                    source_path: format!("{dir_name}/{}", self.handler.file_name()),
                    build_dir: dir_name.clone(),
                    workdir: dir_name.clone(),
                    memory_limit: None,
                };
                std::fs::write(&ctx.source_path, self.code)?;
                let env = self.handler.environment(&dir_name);
                if let Some(compile) = self.handler.compile_command(&ctx) {
                    stdout(
                        clean(&mut Command::new(&compile[0]))
                            .args(&compile[1..])
                            .env("HOME", &dir_name)
                            .envs(env.clone()),
                    )?;
                }
                let run = self.handler.run_command(&ctx);
                expect_hello(
                    clean(&mut Command::new(&run[0]))
                        .args(&run[1..])
                        .env("HOME", &dir_name)
                        .envs(env),
                )?;
            }
        }
        Ok(ms(start))
    }
}

/// `command` with the environment a sandboxed program gets (the caller's own, e.g.
/// `NODE_EXTRA_CA_CERTS`, can make a floor slower than the sandbox).
fn clean(command: &mut Command) -> &mut Command {
    command
        .env_clear()
        .env("PATH", DEFAULT_SEARCH_PATH.join(":"))
        .env("LANG", "C.UTF-8")
}

/// One-shot runs through this binary, and a session's open, warm run and close.
async fn native(iterations: usize, hello: &Hello, rows: &mut Vec<Row>) -> Result<()> {
    let lang = hello.name();
    eprintln!("bench: native one-shot, session open, warm run and close ({lang})");
    let exe = std::env::current_exe()?;
    let [mut one_shot, mut open, mut warm, mut close, mut floor]: [Vec<f64>; 5] =
        Default::default();
    for _ in 0..iterations {
        let start = Instant::now();
        expect_hello(Command::new(&exe).args(["run", "-l", lang, "-c", hello.code]))?;
        one_shot.push(ms(start));
        session_cycle(
            SandboxSession::builder().lang(lang),
            hello.code,
            [&mut open, &mut warm, &mut close],
        )
        .await?;
        floor.push(hello.bare()?);
    }
    rows.extend([
        row(
            format!("native one-shot {lang} (ms)"),
            one_shot,
            Some(&floor),
        ),
        row(format!("native session open {lang} (ms)"), open, None),
        row(format!("native warm run {lang} (ms)"), warm, Some(&floor)),
        row(format!("native session close {lang} (ms)"), close, None),
    ]);
    Ok(())
}

/// Opens a session, runs `code` once and closes it, adding the milliseconds of each step.
async fn session_cycle(
    builder: llm_sandbox::SandboxSessionBuilder,
    code: &str,
    [open, run, close]: [&mut Vec<f64>; 3],
) -> Result<()> {
    let start = Instant::now();
    let session = builder.open().await?;
    open.push(ms(start));
    let start = Instant::now();
    let result = session.run(code).await;
    run.push(ms(start));
    let start = Instant::now();
    session.close().await?;
    close.push(ms(start));
    check_result(&result?)
}

/// Snippets per second in 1, cores and 4×cores parallel native sessions vs as many bare loops.
fn throughput(args: &BenchArgs, rows: &mut Vec<Row>) -> Result<()> {
    let cores = std::thread::available_parallelism()?.get();
    let mut counts = vec![1, cores, 4 * cores];
    counts.dedup();
    for sessions in counts {
        let measure = format!(
            "native throughput {sessions} session{} (snippets/s)",
            if sessions == 1 { "" } else { "s" }
        );
        eprintln!("bench: {measure}");
        let per_worker = args.snippets.div_ceil(sessions);
        let open = || -> Result<_> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let session = runtime.block_on(SandboxSession::builder().open())?;
            // Dropped in this order: the session (destroying the sandbox), then its runtime.
            Ok((session, runtime))
        };
        let run = |(session, runtime): &mut (SandboxSession, tokio::runtime::Runtime)| {
            check_result(&runtime.block_on(session.run(PYTHON))?)
        };
        let sandbox = batches(sessions, per_worker, args.iterations, open, run)?;
        let bare = batches(
            sessions,
            per_worker,
            args.iterations,
            || Ok(()),
            |_| bare_python(),
        )?;
        rows.push(row(measure, sandbox, Some(&bare)));
    }
    Ok(())
}

fn bare_python() -> Result<()> {
    expect_hello(clean(&mut Command::new("/usr/bin/python3")).args(["-c", PYTHON]))
}

/// Snippets per second, once per iteration, of `workers` threads that each run `per_worker`
/// snippets. Each thread sets its state up once (e.g. opens a session) and keeps it.
fn batches<S>(
    workers: usize,
    per_worker: usize,
    iterations: usize,
    setup: impl Fn() -> Result<S> + Sync,
    snippet: impl Fn(&mut S) -> Result<()> + Sync,
) -> Result<Vec<f64>> {
    let start = Barrier::new(workers + 1);
    let done = Barrier::new(workers + 1);
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    // A failed thread keeps meeting the barriers so that the others finish.
                    let mut state = setup();
                    for _ in 0..iterations {
                        start.wait();
                        if let Ok(current) = &mut state {
                            if let Err(error) = (0..per_worker).try_for_each(|_| snippet(current)) {
                                state = Err(error);
                            }
                        }
                        done.wait();
                    }
                    state.map(drop)
                })
            })
            .collect();
        let mut samples = Vec::new();
        for _ in 0..iterations {
            start.wait();
            let begun = Instant::now();
            done.wait();
            samples.push((workers * per_worker) as f64 / begun.elapsed().as_secs_f64());
        }
        for thread in threads {
            thread.join().expect("a bench thread panicked")?;
        }
        Ok(samples)
    })
}

/// The memory of one idle native session: the proportional set size (PSS) of this process's
/// descendants (each session's keeper and init) with several sessions open, divided by their
/// number. PSS counts a page shared by n processes as 1/n of it: keeper and init are forked
/// from this process and share most of their pages with it, which RSS would count again for
/// each of them.
async fn memory(iterations: usize, rows: &mut Vec<Row>) -> Result<()> {
    let measure = "native idle session memory, PSS (MiB)";
    eprintln!("bench: {measure}");
    let mut samples = Vec::new();
    for _ in 0..iterations {
        let mut sessions = Vec::new();
        for _ in 0..MEMORY_SESSIONS {
            sessions.push(SandboxSession::builder().open().await?);
        }
        let kib: u64 = descendants(std::process::id())
            .into_iter()
            .map(pss_kib)
            .sum();
        for session in sessions {
            session.close().await?;
        }
        samples.push(kib as f64 / 1024.0 / MEMORY_SESSIONS as f64);
    }
    rows.push(row(measure.into(), samples, None));
    Ok(())
}

/// The processes below `pid`, from every thread's `children` list.
fn descendants(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut parents = vec![pid];
    while let Some(parent) = parents.pop() {
        let tasks = std::fs::read_dir(format!("/proc/{parent}/task"));
        for task in tasks.into_iter().flatten().flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            for child in children.split_whitespace().filter_map(|c| c.parse().ok()) {
                found.push(child);
                parents.push(child);
            }
        }
    }
    found
}

/// The PSS of a process in KiB (0 when it is gone).
fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("Pss:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A container backend's session steps and one-shot runs vs the same with the engine's CLI.
async fn container(iterations: usize, kind: BackendKind, rows: &mut Vec<Row>) -> Result<()> {
    let engine = kind.name();
    eprintln!("bench: {engine} session open, warm run, close and one-shot");
    let exe = std::env::current_exe()?;
    let image = "llm-sandbox/python:latest";
    let ulimits: &[&str] = match kind {
        BackendKind::Podman => &[
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
        ],
        _ => &[],
    };
    let cli = |args: &[&str]| {
        let mut command = Command::new(engine);
        command.args(args);
        command
    };
    let run = |flags: &str, args: &[&str]| {
        let mut command = cli(&["run", flags, "--network", "none"]);
        command.args(ulimits).arg(image).args(args);
        command
    };
    let [mut open, mut warm, mut close, mut one_shot]: [Vec<f64>; 4] = Default::default();
    let [mut floor_open, mut floor_warm, mut floor_close, mut floor_one_shot]: [Vec<f64>; 4] =
        Default::default();
    for _ in 0..iterations {
        let builder = SandboxSession::builder().backend(kind);
        session_cycle(builder, PYTHON, [&mut open, &mut warm, &mut close]).await?;
        let start = Instant::now();
        expect_hello(Command::new(&exe).args(["run", "-b", engine, "-c", PYTHON]))?;
        one_shot.push(ms(start));

        let start = Instant::now();
        let id = stdout(&mut run("-d", &["sleep", "infinity"]))?;
        floor_open.push(ms(start));
        let id = id.trim();
        let start = Instant::now();
        let exec = expect_hello(&mut cli(&["exec", id, "python3", "-c", PYTHON]));
        floor_warm.push(ms(start));
        let start = Instant::now();
        // Podman's `rm -f` first waits out its 10 s stop timeout; -t 0 kills at once, as Docker does.
        let remove: &[&str] = if engine == "podman" {
            &["rm", "-f", "-t", "0"]
        } else {
            &["rm", "-f"]
        };
        stdout(cli(remove).arg(id))?;
        floor_close.push(ms(start));
        exec?;
        let start = Instant::now();
        expect_hello(&mut run("--rm", &["python3", "-c", PYTHON]))?;
        floor_one_shot.push(ms(start));
    }
    rows.extend([
        row(
            format!("{engine} session open (ms)"),
            open,
            Some(&floor_open),
        ),
        row(format!("{engine} warm run (ms)"), warm, Some(&floor_warm)),
        row(
            format!("{engine} session close (ms)"),
            close,
            Some(&floor_close),
        ),
        row(
            format!("{engine} one-shot (ms)"),
            one_shot,
            Some(&floor_one_shot),
        ),
    ]);
    Ok(())
}

fn row(measure: String, samples: Vec<f64>, floor: Option<&Vec<f64>>) -> Row {
    Row {
        measure,
        samples,
        floor: floor.cloned(),
    }
}

fn ms(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// Runs the command and returns its stdout, or fails unless it exited 0.
fn stdout(command: &mut Command) -> Result<String> {
    let program = Path::new(command.get_program()).display().to_string();
    let output = command
        .output()
        .with_context(|| format!("cannot run {program}"))?;
    ensure!(
        output.status.success(),
        "{program} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn expect_hello(command: &mut Command) -> Result<()> {
    let printed = stdout(command)?;
    ensure!(printed == HELLO, "expected {HELLO:?}, got {printed:?}");
    Ok(())
}

fn check_result(result: &ExecutionResult) -> Result<()> {
    ensure!(
        result.exit_code == 0 && result.stdout == HELLO,
        "the sandbox run failed (exit code {}): {}{}",
        result.exit_code,
        result.stdout,
        result.stderr
    );
    Ok(())
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

fn median(samples: &[f64]) -> f64 {
    let sorted = sorted(samples);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

/// The nearest-rank 95th percentile.
fn p95(samples: &[f64]) -> f64 {
    let sorted = sorted(samples);
    sorted[(sorted.len() * 95).div_ceil(100) - 1]
}

/// Prints `measure | median | p95 | floor median | ratio`, "-" where there is no floor.
fn print_table(rows: &[Row]) {
    let header = ["measure", "median", "p95", "floor median", "ratio"].map(String::from);
    let lines: Vec<[String; 5]> = std::iter::once(header)
        .chain(rows.iter().map(|row| {
            let value = median(&row.samples);
            let floor = row.floor.as_deref().map(median);
            [
                row.measure.clone(),
                format!("{value:.2}"),
                format!("{:.2}", p95(&row.samples)),
                floor.map_or("-".into(), |floor| format!("{floor:.2}")),
                floor.map_or("-".into(), |floor| format!("{:.2}", value / floor)),
            ]
        }))
        .collect();
    let widths: Vec<usize> = (0..5)
        .map(|column| {
            lines
                .iter()
                .map(|line| line[column].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in &lines {
        let cells: Vec<String> = line
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, width))| match column {
                0 => format!("{cell:<width$}"),
                _ => format!("{cell:>width$}"),
            })
            .collect();
        println!("{}", cells.join(" | "));
    }
}
