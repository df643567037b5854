//! `llm-sandbox images build --offline`: builds the project's images with no registry, from the
//! recipe in the repository's images/ folder (embedded in this binary).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};

/// The offline build script and the package lists it reads, as in images/.
const SCRIPT: &str = include_str!("../../../images/build-offline");
const PACKAGE_LISTS: [(&str, &str); 7] = [
    (
        "base.txt",
        include_str!("../../../images/packages/base.txt"),
    ),
    (
        "python.txt",
        include_str!("../../../images/packages/python.txt"),
    ),
    (
        "javascript.txt",
        include_str!("../../../images/packages/javascript.txt"),
    ),
    (
        "java.txt",
        include_str!("../../../images/packages/java.txt"),
    ),
    ("cpp.txt", include_str!("../../../images/packages/cpp.txt")),
    ("go.txt", include_str!("../../../images/packages/go.txt")),
    (
        "ruby.txt",
        include_str!("../../../images/packages/ruby.txt"),
    ),
];

/// Options of `llm-sandbox images`.
#[derive(Args)]
pub struct ImagesArgs {
    #[command(subcommand)]
    command: ImagesCommand,
}

#[derive(Subcommand)]
enum ImagesCommand {
    /// Build llm-sandbox/<lang>:latest for Docker and Podman (cached by a hash of the recipe).
    Build(BuildArgs),
}

/// Options of `llm-sandbox images build`.
#[derive(Args)]
struct BuildArgs {
    /// Build with no registry: debootstrap a Debian root from Debian's packages, then import it
    /// (needs root and debootstrap). Registry builds use images/<lang>/Dockerfile with
    /// `docker build`.
    #[arg(long)]
    offline: bool,
    /// Import into Docker only.
    #[arg(long)]
    docker: bool,
    /// Import into Podman only.
    #[arg(long)]
    podman: bool,
    /// Rebuild even when up to date (e.g. for Debian security updates).
    #[arg(long)]
    force: bool,
    /// python, javascript, java, cpp, go, ruby [default: all]
    languages: Vec<String>,
}

/// Runs the subcommand; its exit status is the build's.
pub fn images(args: &ImagesArgs) -> Result<ExitCode> {
    let ImagesCommand::Build(build) = &args.command;
    if !build.offline {
        bail!(
            "only offline builds are built in (`llm-sandbox images build --offline`); with a registry, run `docker build -f images/<lang>/Dockerfile images/` from the repository"
        );
    }
    let recipe = tempfile::tempdir().context("creating a folder for the build recipe")?;
    let script = recipe.path().join("build-offline");
    std::fs::write(&script, SCRIPT).context("writing the build script")?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let packages = recipe.path().join("packages");
    std::fs::create_dir(&packages)?;
    for (name, contents) in PACKAGE_LISTS {
        std::fs::write(packages.join(name), contents).with_context(|| format!("writing {name}"))?;
    }
    let mut command = Command::new("bash");
    command.arg(&script);
    for (flag, wanted) in [
        ("--docker", build.docker),
        ("--podman", build.podman),
        ("--force", build.force),
    ] {
        if wanted {
            command.arg(flag);
        }
    }
    command.args(&build.languages).stdin(Stdio::null());
    // The script prints its own progress, a line per step with the elapsed time.
    let status = command
        .status()
        .context("running the offline build (bash is needed)")?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}
