//! `llm-sandbox check`: checks code against a security policy without running it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use llm_sandbox::SecurityPolicy;
use serde::Serialize;

use crate::run::{language, read_code};

/// Options of `llm-sandbox check`.
#[derive(Args)]
pub struct CheckArgs {
    /// The file holding the code, or `-` to read the code from stdin.
    #[arg(value_name = "FILE|-", conflicts_with = "code")]
    file: Option<PathBuf>,
    /// The code to check, instead of FILE (`-` reads it from stdin).
    #[arg(short, long, value_name = "CODE")]
    code: Option<String>,
    /// The language [default: from FILE's extension, else python].
    #[arg(short, long, value_name = "LANG")]
    lang: Option<String>,
    /// A preset (minimal, development, educational, data_science, web_scraping, production,
    /// strict) or a TOML policy file.
    #[arg(long, value_name = "NAME|FILE", default_value = "production")]
    policy: String,
    /// Print one JSON object: {"safe": bool, "violations": [{line, description, severity, matched}]}.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    safe: bool,
    violations: &'a [llm_sandbox::Violation],
}

/// Prints the violations; exits 0 when the code passes, 1 when the policy blocks it.
pub fn check(args: &CheckArgs) -> Result<ExitCode> {
    let code = read_code(args.file.as_deref(), args.code.as_deref())?;
    let policy = SecurityPolicy::load(&args.policy)?;
    let handler = language(&args.lang, args.file.as_deref())?;
    let (safe, violations) = policy.is_safe(handler.as_ref(), &code);
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&Report {
                safe,
                violations: &violations
            })?
        );
    } else if safe {
        println!("safe under the `{}` policy", args.policy);
    } else {
        for violation in &violations {
            println!("{violation}");
        }
    }
    Ok(if safe {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
