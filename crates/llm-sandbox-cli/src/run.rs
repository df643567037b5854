//! `llm-sandbox run`: runs code in a sandbox and passes its output and exit status through.

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use llm_sandbox::{
    auto_order, parse_size, Artifact, BackendKind, Error, ExecutionResult, LanguageHandler,
    LanguageRegistry, NetworkMode, Omitted, PlotFormat, PlotOutput, Progress, ResourceLimits,
    RunOptions, SandboxSession, SandboxSessionBuilder, SecurityPolicy,
};
use serde::Serialize;
use tokio::signal::unix::{signal, SignalKind};

/// The exit status when the program ran out of time (as `timeout(1)` reports it).
const EXIT_TIMED_OUT: u8 = 124;

const EXIT_STATUS_HELP: &str = "\
Exit status: the program's own exit code; 124 when it timed out; 125 when the sandbox itself \
failed (bad option, backend or toolchain unavailable), with a one-line reason on stderr \
prefixed \"llm-sandbox: \"; 126 when a security policy blocked the code.";

/// Options of `llm-sandbox run`.
#[derive(Args)]
#[command(after_help = EXIT_STATUS_HELP)]
pub struct RunArgs {
    /// The file holding the code, or `-` to read the code from stdin.
    #[arg(value_name = "FILE|-", conflicts_with = "code")]
    file: Option<PathBuf>,

    /// python, javascript, java, cpp, go, ruby or an alias [default: from FILE's extension, else
    /// python]
    #[arg(short, long, value_name = "LANG")]
    lang: Option<String>,

    /// The code to run, instead of FILE (`-` reads it from stdin).
    #[arg(short, long, value_name = "CODE")]
    code: Option<String>,

    /// native, docker, podman, kubernetes, or auto: the first that works, in the order of
    /// LLM_SANDBOX_AUTO_ORDER (default native,docker,podman); --verbose says why others were skipped.
    #[arg(short, long, value_name = "NAME", default_value = "native", value_parser = parse_backend)]
    backend: BackendChoice,

    /// The container image (container backends).
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,

    /// Build the container image from this Dockerfile (context: its folder); removed at the end.
    #[arg(long, value_name = "FILE", conflicts_with = "image")]
    dockerfile: Option<PathBuf>,

    /// The execution timeout in seconds (fractions allowed).
    #[arg(short, long, value_name = "SECS", default_value = "30", value_parser = parse_timeout)]
    timeout: Duration,

    /// The memory limit, e.g. 256m or 1g [default: 1g].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    memory: Option<u64>,

    /// The CPU limit in cores, e.g. 0.5 [default: unlimited].
    #[arg(long, value_name = "N")]
    cpus: Option<f64>,

    /// The maximum number of processes and threads [default: 256].
    #[arg(long, value_name = "N")]
    pids: Option<u64>,

    /// The size of the writable area (workdir and /tmp) [default: 1g].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    disk: Option<u64>,

    /// Bytes kept of each of stdout and stderr; the rest is dropped and marked [default: 10m].
    #[arg(long, value_name = "SIZE", value_parser = parse_size_arg)]
    output_limit: Option<u64>,

    /// none (private loopback only), host, or a mode a container backend knows.
    #[arg(long, value_name = "MODE", default_value = "none", value_parser = parse_network)]
    network: NetworkMode,

    /// A security policy: a preset (minimal, development, educational, data_science,
    /// web_scraping, production, strict) or a TOML file. Blocked code exits 126, unrun.
    #[arg(long, value_name = "NAME|FILE")]
    policy: Option<String>,

    /// An environment variable for the program (repeatable).
    #[arg(short, long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,

    /// Give FILE's bytes to the program's stdin. Without it the program's stdin is empty: this
    /// command's own stdin is never forwarded (pass `--stdin-file /dev/stdin` to forward it).
    #[arg(long, value_name = "FILE")]
    stdin_file: Option<PathBuf>,

    /// Capture plots (matplotlib, seaborn, pandas, plotly, PIL; python only): in --json's
    /// `plots`, and with --plots-dir as files.
    #[arg(long)]
    plots: bool,

    /// Capture plots and write them to DIR as plot-1.png, plot-2.svg, … (implies --plots).
    #[arg(long, value_name = "DIR")]
    plots_dir: Option<PathBuf>,

    /// The format of figures shown with plt.show(): png, jpeg, svg or pdf [default: png].
    #[arg(long, value_name = "FORMAT", value_parser = parse_plot_format)]
    plot_format: Option<PlotFormat>,

    /// Write the files the program leaves under the sandbox's `output` folder to DIR, a new or
    /// empty folder (existing files are never replaced; hidden names are not written).
    #[arg(long, value_name = "DIR")]
    artifacts_dir: Option<PathBuf>,

    /// Print one JSON object on stdout: exit_code, stdout, stderr, timed_out, out_of_memory,
    /// duration_ms, plots, artifacts (with --artifacts-dir), omitted and warnings.
    #[arg(long)]
    json: bool,

    /// Pass the program's output to a terminal byte for byte. By default, when stdout or stderr
    /// is a terminal, control characters other than newline, tab and carriage return are shown
    /// as escapes (`\x1b`), so that the code cannot drive the terminal.
    #[arg(long, conflicts_with = "json")]
    raw: bool,
}

/// Which backend to open: one kind, or the first available.
#[derive(Clone, Copy)]
enum BackendChoice {
    Auto,
    Kind(BackendKind),
}

/// How a run ended.
enum Outcome {
    Finished(ExecutionResult),
    /// This command got the signal with this number; the run was abandoned.
    Interrupted(i32),
}

/// Runs the code and returns the exit status to leave with.
pub async fn run(args: RunArgs) -> Result<ExitCode> {
    let code = read_code(args.file.as_deref(), args.code.as_deref())?;
    let policy = args
        .policy
        .as_deref()
        .map(SecurityPolicy::load)
        .transpose()?;
    if let Some(policy) = &policy {
        // Checked before any sandbox is made: blocked code costs nothing.
        let (safe, violations) =
            policy.is_safe(language(&args.lang, args.file.as_deref())?.as_ref(), &code);
        if !safe {
            for violation in &violations {
                eprintln!("llm-sandbox: {violation}");
            }
            return Ok(ExitCode::from(crate::exit_status(
                llm_sandbox::ErrorKind::PolicyViolation,
            )));
        }
    }
    let stdin = args
        .stdin_file
        .as_deref()
        .map(read_stdin_file)
        .transpose()?;
    if let Some(dir) = &args.artifacts_dir {
        crate::artifacts::check_artifacts_dir(dir)?;
    }
    let session = open(builder(&args)?, args.backend).await?;
    let warnings = session.warnings().await.unwrap_or_default();
    let options = RunOptions {
        stdin,
        ..Default::default()
    };
    let outcome = run_until_signal(&session, &code, options).await;
    if let Err(error) = session.close().await {
        tracing::warn!("closing the sandbox failed: {error}");
    }
    match outcome? {
        Outcome::Finished(result) => Ok(finish(&result, &args, &warnings)),
        Outcome::Interrupted(signal) => Ok(exit_status(128 + signal)),
    }
}

/// Reports the program's output first, then saves its plots and artifacts (with --json, saves
/// first, so that the one object says what was left out); nothing the program chose (file
/// names, plot formats) can turn its run into a failure or hide its output.
fn finish(result: &ExecutionResult, args: &RunArgs, warnings: &[String]) -> ExitCode {
    if args.json {
        let saved = save(result, args);
        let mut omitted = result.omitted.clone();
        omitted.extend(saved.omitted);
        let json = JsonResult::new(result, &omitted, warnings);
        let mut stdout = std::io::stdout().lock();
        let printed = serde_json::to_writer(&mut stdout, &json)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(stdout))
            .and_then(|()| stdout.flush());
        if let Err(error) = printed {
            tracing::error!("writing the result: {error}");
        }
    } else {
        let shown = |bytes: &[u8], terminal: bool| {
            if terminal && !args.raw {
                crate::terminal::visible(bytes)
            } else {
                bytes.to_vec()
            }
        };
        let stdout = shown(&result.stdout_bytes, std::io::stdout().is_terminal());
        let stderr = shown(&result.stderr_bytes, std::io::stderr().is_terminal());
        if let Err(error) = write_all(&mut std::io::stdout().lock(), &stdout)
            .and_then(|()| write_all(&mut std::io::stderr().lock(), &stderr))
        {
            tracing::error!("writing the program's output: {error}");
        }
        let saved = save(result, args);
        for omitted in result.omitted.iter().chain(&saved.omitted) {
            eprintln!(
                "llm-sandbox: not returned: {}: {}",
                crate::terminal::quoted(&omitted.name),
                crate::terminal::quoted(&omitted.reason),
            );
        }
    }
    if result.timed_out {
        ExitCode::from(EXIT_TIMED_OUT)
    } else {
        exit_status(result.exit_code)
    }
}

/// The code, from FILE, `--code` or stdin (FILE or CODE `-`).
pub fn read_code(file: Option<&Path>, code: Option<&str>) -> Result<String> {
    match (file, code) {
        (Some(path), None) if path == Path::new("-") => read_stdin(),
        (None, Some("-")) => read_stdin(),
        (Some(path), None) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the code from {}", path.display())),
        (None, Some(code)) => Ok(code.to_string()),
        _ => bail!("no code given: pass a FILE, `-` to read the code from stdin, or --code CODE"),
    }
}

fn read_stdin_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read --stdin-file {}", path.display()))
}

fn read_stdin() -> Result<String> {
    let mut bytes = Vec::new();
    std::io::stdin()
        .read_to_end(&mut bytes)
        .context("cannot read the code from stdin")?;
    String::from_utf8(bytes).context("the code on stdin is not UTF-8 text")
}

/// The language asked for, else the one of FILE's extension, else python.
pub fn language(lang: &Option<String>, file: Option<&Path>) -> Result<Arc<dyn LanguageHandler>> {
    let registry = LanguageRegistry::new();
    let handler = match lang {
        Some(lang) => registry.get(lang).map_err(|_| {
            anyhow!(
                "language `{lang}` is not supported; use {} or an alias (see `llm-sandbox languages`)",
                registry.names().join(", ")
            )
        })?,
        None => file
            .and_then(Path::extension)
            .and_then(|extension| registry.by_extension(&extension.to_string_lossy()))
            .map_or_else(|| registry.get("python"), Ok)?,
    };
    Ok(handler)
}

fn builder(args: &RunArgs) -> Result<SandboxSessionBuilder> {
    let defaults = ResourceLimits::default();
    let limits = ResourceLimits {
        memory: args.memory.or(defaults.memory),
        cpus: args.cpus.or(defaults.cpus),
        pids: args.pids.or(defaults.pids),
        disk: args.disk.or(defaults.disk),
        output: args.output_limit.unwrap_or(defaults.output),
    };
    let mut builder = SandboxSession::builder()
        .lang(language(&args.lang, args.file.as_deref())?.name())
        .execution_timeout(args.timeout)
        .limits(limits)
        .network(args.network.clone());
    if let Some(image) = &args.image {
        builder = builder.image(image.clone());
    }
    if let Some(dockerfile) = &args.dockerfile {
        builder = builder.dockerfile(dockerfile.clone());
    }
    if args.plots || args.plots_dir.is_some() || args.plot_format.is_some() {
        builder = builder
            .enable_plotting(true)
            .plot_format(args.plot_format.unwrap_or_default());
    }
    if args.artifacts_dir.is_some() {
        builder = builder.collect_artifacts(true);
    }
    builder = builder.on_progress(progress_bar());
    Ok(args
        .env
        .iter()
        .fold(builder, |builder, (key, value)| builder.env(key, value)))
}

/// Draws image pulls and builds as a progress bar on stderr, only when stderr is a terminal
/// (so that scripts see nothing but the program's own output).
pub fn progress_bar() -> impl Fn(&Progress) + Send + Sync + 'static {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} {wide_msg} {bytes}/{total_bytes}")
            .expect("a valid progress template"),
    );
    move |step: &Progress| {
        if step.done {
            bar.finish_and_clear();
            return;
        }
        bar.set_prefix(step.task.clone());
        bar.set_message(step.message.clone());
        if let (Some(current), Some(total)) = (step.current, step.total) {
            bar.set_length(total);
            bar.set_position(current);
        }
        bar.tick();
    }
}

async fn open(builder: SandboxSessionBuilder, choice: BackendChoice) -> Result<SandboxSession> {
    match choice {
        BackendChoice::Kind(kind) => Ok(builder.backend(kind).open().await?),
        BackendChoice::Auto => open_first_available(builder).await,
    }
}

/// Opens the first backend that can be used, in `auto_order()` (LLM_SANDBOX_AUTO_ORDER); with
/// --verbose, says which one was used and why the others were skipped.
async fn open_first_available(builder: SandboxSessionBuilder) -> Result<SandboxSession> {
    let (session, _skipped) = builder.open_first(&auto_order()?).await?;
    Ok(session)
}

/// Runs the code; on SIGINT or SIGTERM abandons the run so that the caller can close the sandbox.
async fn run_until_signal(
    session: &SandboxSession,
    code: &str,
    options: RunOptions,
) -> Result<Outcome> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        biased;
        _ = interrupt.recv() => Ok(Outcome::Interrupted(SignalKind::interrupt().as_raw_value())),
        _ = terminate.recv() => Ok(Outcome::Interrupted(SignalKind::terminate().as_raw_value())),
        result = session.run_with(code, options) => Ok(Outcome::Finished(result?)),
    }
}

/// Writes plots and artifacts to the folders asked for.
fn save(result: &ExecutionResult, args: &RunArgs) -> crate::artifacts::Saved {
    let mut saved = crate::artifacts::Saved::default();
    if let Some(dir) = &args.plots_dir {
        crate::artifacts::write_plots(dir, &result.plots, &mut saved);
    }
    if let Some(dir) = &args.artifacts_dir {
        crate::artifacts::write_artifacts(dir, &result.artifacts, &mut saved);
    }
    for path in &saved.written {
        tracing::info!("wrote {}", path.display());
    }
    saved
}

/// The exit status for `code`: its low byte, as a shell sees it.
fn exit_status(code: i32) -> ExitCode {
    ExitCode::from(code as u8)
}

fn write_all(stream: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes)?;
    stream.flush()
}

/// The documented `--json` shape.
#[derive(Serialize)]
struct JsonResult<'a> {
    exit_code: i32,
    stdout: &'a str,
    stderr: &'a str,
    timed_out: bool,
    out_of_memory: bool,
    duration_ms: u128,
    plots: &'a [PlotOutput],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    artifacts: &'a [Artifact],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    omitted: &'a [Omitted],
    /// Where the isolation is weaker than the defaults promise here (e.g. rlimits only).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    warnings: &'a [String],
}

impl<'a> JsonResult<'a> {
    fn new(result: &'a ExecutionResult, omitted: &'a [Omitted], warnings: &'a [String]) -> Self {
        JsonResult {
            exit_code: result.exit_code,
            stdout: &result.stdout,
            stderr: &result.stderr,
            timed_out: result.timed_out,
            out_of_memory: result.out_of_memory,
            duration_ms: result.duration.as_millis(),
            plots: &result.plots,
            artifacts: &result.artifacts,
            omitted,
            warnings,
        }
    }
}

/// The library's message without its "invalid argument: " prefix (clap adds its own).
fn reason(error: Error) -> String {
    match error {
        Error::InvalidArgument(message) => message,
        other => other.to_string(),
    }
}

fn parse_backend(text: &str) -> Result<BackendChoice, String> {
    if text.eq_ignore_ascii_case("auto") {
        return Ok(BackendChoice::Auto);
    }
    text.parse().map(BackendChoice::Kind).map_err(|_: Error| {
        format!("unknown backend `{text}`; use native, docker, podman, kubernetes or auto")
    })
}

fn parse_plot_format(text: &str) -> Result<PlotFormat, String> {
    text.parse().map_err(reason)
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|secs| *secs > 0.0)
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok())
        .ok_or_else(|| format!("`{text}` is not a positive number of seconds"))
}

fn parse_size_arg(text: &str) -> Result<u64, String> {
    parse_size(text).map_err(reason)
}

fn parse_network(text: &str) -> Result<NetworkMode, String> {
    text.parse().map_err(reason)
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}
