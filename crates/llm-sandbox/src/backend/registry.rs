//! The only file that names every backend: opening, probing, cleaning up and building images,
//! by [`BackendKind`].

use std::path::Path;
use std::time::Duration;

use super::{docker, native, Backend, BackendKind, ExecRequest};
use crate::error::{Error, Result};
use crate::spec::{EngineConfig, ProgressSink, SandboxSpec};

/// Opens a sandbox of `kind` for `spec`, or says why that backend cannot be used here.
pub async fn open(kind: BackendKind, spec: &SandboxSpec) -> Result<Box<dyn Backend>> {
    match kind {
        BackendKind::Native => Ok(Box::new(native::NativeBackend::open(spec).await?)),
        BackendKind::Docker | BackendKind::Podman => {
            Ok(Box::new(docker::DockerBackend::open(kind, spec).await?))
        }
        BackendKind::Kubernetes => Err(not_built(kind)),
    }
}

/// Checks that a backend works here. Native: opens a default sandbox, runs `true` in it and
/// returns the isolation in force, then its warnings as `("warning", …)` lines (needs no
/// language toolchain). Docker and Podman: reaches the
/// engine and lists the project's images.
pub async fn probe(kind: BackendKind) -> Result<Vec<(String, String)>> {
    let spec = SandboxSpec::default();
    if matches!(kind, BackendKind::Docker | BackendKind::Podman) {
        return docker::probe(kind, &spec.engine).await;
    }
    if kind == BackendKind::Kubernetes {
        return Err(not_built(kind));
    }
    let mut backend = open(kind, &spec).await?;
    let request = ExecRequest {
        argv: vec!["true".into()],
        env: vec![("PATH".into(), spec.search_path.join(":"))],
        cwd: spec.workdir.clone(),
        stdin: None,
        timeout: Duration::from_secs(10),
        output_limit: 4096,
        package_index: None,
    };
    let output = backend.exec(request, &mut |_, _| {}).await;
    let mut isolation = backend.isolation();
    isolation.extend(
        backend
            .warnings()
            .into_iter()
            .map(|warning| ("warning".to_string(), warning)),
    );
    backend.close().await?;
    let output = output?;
    if output.exit_code != 0 {
        return Err(Error::Sandbox(format!(
            "`true` failed in the sandbox with exit code {}: {}",
            output.exit_code,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(isolation)
}

/// Removes what crashed sessions of `kind` left on this host, returning what was removed:
/// native, stale cgroups; Docker and Podman, containers and workdir volumes whose creating
/// process is gone (`all`: every one of the project's).
pub async fn gc(kind: BackendKind, all: bool) -> Result<Vec<String>> {
    match kind {
        BackendKind::Native => native::gc(),
        BackendKind::Docker | BackendKind::Podman => {
            docker::gc(kind, &EngineConfig::default(), all).await
        }
        BackendKind::Kubernetes => Err(not_built(kind)),
    }
}

/// Builds image `tag` from `dockerfile` (relative to `context_dir`) for a container backend,
/// with progress to `sink`.
pub async fn build_image(
    kind: BackendKind,
    context_dir: &Path,
    dockerfile: &str,
    tag: &str,
    sink: Option<&ProgressSink>,
) -> Result<()> {
    match kind {
        BackendKind::Docker | BackendKind::Podman => {
            let engine = EngineConfig::default();
            docker::build(kind, &engine, context_dir, dockerfile, tag, sink).await
        }
        other => Err(Error::invalid(format!(
            "the {other} backend builds no images; use docker or podman"
        ))),
    }
}

fn not_built(kind: BackendKind) -> Error {
    Error::BackendUnavailable {
        backend: kind.name().into(),
        reason: "this build does not include it yet; use the native backend".into(),
    }
}
