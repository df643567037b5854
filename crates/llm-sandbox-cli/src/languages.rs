//! `llm-sandbox languages`: the supported languages and whether their toolchains are installed.

use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use llm_sandbox::language::find_program;
use llm_sandbox::{LanguageHandler, LanguageRegistry, DEFAULT_SEARCH_PATH};
use serde::Serialize;

/// Options of `llm-sandbox languages`.
#[derive(Args)]
pub struct LanguagesArgs {
    /// Prints a JSON array instead of a table.
    #[arg(long)]
    json: bool,
}

/// One language as listed.
#[derive(Serialize)]
struct Language {
    name: String,
    aliases: Vec<String>,
    extension: String,
    toolchain: Vec<Tool>,
    installed: bool,
}

/// One program a language needs, and where it was found on the host.
#[derive(Serialize)]
struct Tool {
    binary: String,
    package: String,
    path: Option<String>,
}

/// Prints the languages as a table or, with `--json`, as a JSON array.
pub fn languages(args: &LanguagesArgs) -> Result<ExitCode> {
    let languages: Vec<Language> = LanguageRegistry::new()
        .handlers()
        .map(|handler| describe(handler.as_ref()))
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&languages)?);
    } else {
        print_table(&languages);
    }
    Ok(ExitCode::SUCCESS)
}

fn describe(handler: &dyn LanguageHandler) -> Language {
    let toolchain: Vec<Tool> = handler
        .toolchain()
        .into_iter()
        .map(|tool| Tool {
            binary: tool.binary.into(),
            package: tool.package.into(),
            path: find_program(&DEFAULT_SEARCH_PATH, tool.binary)
                .map(|path| path.display().to_string()),
        })
        .collect();
    Language {
        name: handler.name().into(),
        aliases: handler.aliases().iter().map(|a| a.to_string()).collect(),
        extension: handler.file_extension().into(),
        installed: toolchain.iter().all(|tool| tool.path.is_some()),
        toolchain,
    }
}

fn print_table(languages: &[Language]) {
    let header = ["NAME", "ALIASES", "EXTENSION", "TOOLCHAIN", "STATUS"].map(String::from);
    let rows: Vec<[String; 5]> = std::iter::once(header)
        .chain(languages.iter().map(|language| {
            let binaries: Vec<&str> = language
                .toolchain
                .iter()
                .map(|t| t.binary.as_str())
                .collect();
            [
                language.name.clone(),
                language.aliases.join(", "),
                language.extension.clone(),
                binaries.join(", "),
                status(language),
            ]
        }))
        .collect();
    let widths: Vec<usize> = (0..5)
        .map(|column| rows.iter().map(|row| row[column].len()).max().unwrap_or(0))
        .collect();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
}

/// `present`, or what to install.
fn status(language: &Language) -> String {
    let missing: Vec<&str> = language
        .toolchain
        .iter()
        .filter(|tool| tool.path.is_none())
        .map(|tool| tool.package.as_str())
        .collect();
    if missing.is_empty() {
        "present".into()
    } else {
        format!("missing (apt-get install {})", missing.join(" "))
    }
}
