//! `llm-sandbox`: run untrusted, model-written code in a sandbox from the command line.

mod artifacts;
mod bench;
mod check;
mod doctor;
mod gc;
mod images;
mod languages;
mod run;
mod terminal;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use llm_sandbox::ErrorKind;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// The exit status when the sandbox itself failed, not the program in it.
const EXIT_SANDBOX_FAILED: u8 = 125;
/// The exit status when a security policy blocked the code.
const EXIT_POLICY_BLOCKED: u8 = 126;

/// The exit status for a failure of `kind`: the one mapping from the library's errors.
pub fn exit_status(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::PolicyViolation => EXIT_POLICY_BLOCKED,
        _ => EXIT_SANDBOX_FAILED,
    }
}

/// Run untrusted, model-written code in a sandbox.
#[derive(Parser)]
#[command(name = "llm-sandbox", version)]
struct Cli {
    /// Log warnings and debug details on stderr (RUST_LOG, when set, refines the filter).
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run code in a sandbox, passing its output and exit code through.
    Run(Box<run::RunArgs>),
    /// Check code against a security policy without running it (exit 1 when blocked).
    Check(check::CheckArgs),
    /// List the supported languages and whether their toolchains are installed.
    Languages(languages::LanguagesArgs),
    /// Check which backends work on this host, and why not.
    Doctor,
    /// Remove what crashed sessions left behind (cgroups, containers).
    Gc(gc::GcArgs),
    /// Build the project's container images.
    Images(images::ImagesArgs),
    /// Measure sandbox latency, throughput and memory, each beside its floor without a sandbox.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return usage_error(&error),
    };
    init_tracing(cli.verbose);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("llm-sandbox: {}", describe(&error));
            let status = error
                .chain()
                .find_map(|cause| cause.downcast_ref::<llm_sandbox::Error>())
                .map_or(EXIT_SANDBOX_FAILED, |error| exit_status(error.kind()));
            ExitCode::from(status)
        }
    }
}

/// Runs one subcommand on a single-threaded runtime.
fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match command {
            Command::Run(args) => run::run(*args).await,
            Command::Languages(args) => languages::languages(&args),
            Command::Doctor => Ok(doctor::doctor().await),
            Command::Check(args) => check::check(&args),
            Command::Gc(args) => Ok(gc::gc(&args).await),
            Command::Images(args) => images::images(&args).await,
            Command::Bench(args) => bench::bench(&args).await,
        }
    })
}

/// Prints `--help`/`--version` (exit 0) or a one-line usage error (exit 125, not clap's 2).
fn usage_error(error: &clap::Error) -> ExitCode {
    if !error.use_stderr() {
        let _ = error.print();
        return ExitCode::SUCCESS;
    }
    let text = error.render().to_string();
    let mut lines = text.lines().map(str::trim);
    let first = lines.next().unwrap_or_default();
    let mut message = match error.kind() {
        clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "no command given".to_string()
        }
        _ => first.strip_prefix("error: ").unwrap_or(first).to_string(),
    };
    for tip in lines.filter(|line| line.starts_with("tip: ")) {
        message.push_str("; ");
        message.push_str(tip);
    }
    eprintln!("llm-sandbox: {message}; see --help for usage");
    ExitCode::from(EXIT_SANDBOX_FAILED)
}

/// Logs only errors by default, so that stderr carries the program's own stderr; `--verbose`
/// adds warnings (e.g. the rlimit fallback) and debug details. RUST_LOG refines either.
fn init_tracing(verbose: bool) {
    let level = if verbose {
        LevelFilter::DEBUG
    } else {
        LevelFilter::ERROR
    };
    let filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .from_env_lossy();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The error and its causes on one line, skipping a cause its parent's message already ends with.
fn describe(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain().map(ToString::to_string) {
        if !message.ends_with(&cause) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&cause);
        }
    }
    one_line(&message)
}

/// Joins a message's lines so that every failure is reported on exactly one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}
