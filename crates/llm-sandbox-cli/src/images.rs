//! `llm-sandbox images build`: builds the project's images from the recipes of the repository's
//! images/ folder, embedded in this binary: from the Dockerfiles (with a registry), or offline
//! from Debian's packages (with none).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use llm_sandbox::backend::registry;
use llm_sandbox::BackendKind;

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

/// The Dockerfiles, one per language (build context: images/).
const DOCKERFILES: [(&str, &str); 6] = [
    ("python", include_str!("../../../images/python/Dockerfile")),
    (
        "javascript",
        include_str!("../../../images/javascript/Dockerfile"),
    ),
    ("java", include_str!("../../../images/java/Dockerfile")),
    ("cpp", include_str!("../../../images/cpp/Dockerfile")),
    ("go", include_str!("../../../images/go/Dockerfile")),
    ("ruby", include_str!("../../../images/ruby/Dockerfile")),
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
    /// (needs root and debootstrap). Without it, the Dockerfiles are built (FROM a registry).
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
pub async fn images(args: &ImagesArgs) -> Result<ExitCode> {
    let ImagesCommand::Build(build) = &args.command;
    let recipe = write_recipe()?;
    if build.offline {
        offline(build, recipe.path())
    } else {
        from_dockerfiles(build, recipe.path()).await
    }
}

/// Writes the embedded images/ folder (script, package lists, Dockerfiles) to a temporary folder.
fn write_recipe() -> Result<tempfile::TempDir> {
    let recipe = tempfile::tempdir().context("creating a folder for the build recipe")?;
    let script = recipe.path().join("build-offline");
    std::fs::write(&script, SCRIPT).context("writing the build script")?;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
    let packages = recipe.path().join("packages");
    std::fs::create_dir(&packages)?;
    for (name, contents) in PACKAGE_LISTS {
        std::fs::write(packages.join(name), contents).with_context(|| format!("writing {name}"))?;
    }
    for (lang, dockerfile) in DOCKERFILES {
        std::fs::create_dir(recipe.path().join(lang))?;
        std::fs::write(recipe.path().join(lang).join("Dockerfile"), dockerfile)?;
    }
    Ok(recipe)
}

/// Builds with the offline recipe; the script prints its own progress, a line per step.
fn offline(build: &BuildArgs, recipe: &std::path::Path) -> Result<ExitCode> {
    let mut command = Command::new("bash");
    command.arg(recipe.join("build-offline"));
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
    let status = command
        .status()
        .context("running the offline build (bash is needed)")?;
    Ok(ExitCode::from(
        status.code().unwrap_or(1).clamp(0, 255) as u8
    ))
}

/// Builds llm-sandbox/<lang>:latest from the Dockerfiles on each chosen engine, with progress.
async fn from_dockerfiles(build: &BuildArgs, recipe: &std::path::Path) -> Result<ExitCode> {
    let languages: Vec<&str> = if build.languages.is_empty() {
        DOCKERFILES.iter().map(|(lang, _)| *lang).collect()
    } else {
        build.languages.iter().map(String::as_str).collect()
    };
    for lang in &languages {
        if !DOCKERFILES.iter().any(|(known, _)| known == lang) {
            bail!("no image recipe for `{lang}`; use python, javascript, java, cpp, go or ruby");
        }
    }
    let engines = match (build.docker, build.podman) {
        (false, true) => vec![BackendKind::Podman],
        (true, false) => vec![BackendKind::Docker],
        _ => vec![BackendKind::Docker, BackendKind::Podman],
    };
    let bar = crate::run::progress_bar();
    let sink = llm_sandbox::ProgressSink(std::sync::Arc::new(bar));
    for kind in engines {
        for lang in &languages {
            let tag = format!("llm-sandbox/{lang}:latest");
            let dockerfile = format!("{lang}/Dockerfile");
            registry::build_image(kind, recipe, &dockerfile, &tag, Some(&sink))
                .await
                .with_context(|| format!("building {tag} for {kind} from its Dockerfile (a registry must be reachable; without one use --offline)"))?;
            println!("{kind}: built {tag}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
