//! Connecting to Docker or Podman: from the environment, a URL (unix socket, tcp, TLS), or a
//! client the caller built; the API version is negotiated with Docker and fixed for Podman.

use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};

use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::spec::EngineConfig;

/// Seconds a single request may take (exec streams are not bounded by it).
const REQUEST_TIMEOUT: u64 = 600;

/// The Docker-compatible API version Podman 4 and 5 serve. Negotiating it would cost a
/// `/version` request, which Podman answers in about half a second (it gathers host details).
const PODMAN_API_VERSION: ClientVersion = ClientVersion {
    major_version: 1,
    minor_version: 41,
};

/// Connects to the engine of `kind` (negotiating the API version with Docker) and checks that
/// it answers.
pub async fn connect(kind: BackendKind, engine: &EngineConfig) -> Result<Docker> {
    let client = match &engine.client {
        Some(client) => client.clone(),
        None => {
            let url = engine
                .url
                .clone()
                .or_else(|| environment_url(kind))
                .unwrap_or_else(|| default_url(kind));
            build(kind, &url, engine)?
        }
    };
    let client = match kind {
        BackendKind::Podman => client,
        _ => client
            .negotiate_version()
            .await
            .map_err(|e| unreachable(kind, engine, &e.to_string()))?,
    };
    client
        .ping()
        .await
        .map_err(|e| unreachable(kind, engine, &e.to_string()))?;
    Ok(client)
}

fn build(kind: BackendKind, url: &str, engine: &EngineConfig) -> Result<Docker> {
    let version = match kind {
        BackendKind::Podman => &PODMAN_API_VERSION,
        _ => API_DEFAULT_VERSION,
    };
    let unavailable = |e: bollard::errors::Error| unreachable(kind, engine, &format!("{url}: {e}"));
    if let Some(path) = url
        .strip_prefix("unix://")
        .or_else(|| url.starts_with('/').then_some(url))
    {
        return Docker::connect_with_unix(path, REQUEST_TIMEOUT, version).map_err(unavailable);
    }
    if url.starts_with("tcp://") || url.starts_with("http://") || url.starts_with("https://") {
        return match &engine.tls {
            Some(tls) => {
                let address = url.replacen("tcp://", "https://", 1);
                Docker::connect_with_ssl(
                    &address,
                    &tls.key,
                    &tls.cert,
                    &tls.ca,
                    REQUEST_TIMEOUT,
                    version,
                )
                .map_err(unavailable)
            }
            None => Docker::connect_with_http(url, REQUEST_TIMEOUT, version).map_err(unavailable),
        };
    }
    Err(Error::invalid(format!(
        "engine URL `{url}` is not unix:///path, /path, tcp://host:port, http:// or https://"
    )))
}

fn environment_url(kind: BackendKind) -> Option<String> {
    let variable = match kind {
        BackendKind::Podman => "CONTAINER_HOST",
        _ => "DOCKER_HOST",
    };
    std::env::var(variable).ok().filter(|v| !v.is_empty())
}

/// The engine's usual socket: Docker's, or Podman's rootful or rootless one.
pub fn default_url(kind: BackendKind) -> String {
    match kind {
        BackendKind::Podman if !nix::unistd::geteuid().is_root() => {
            let runtime_dir = std::env::var("XDG_RUNTIME_DIR")
                .unwrap_or_else(|_| format!("/run/user/{}", nix::unistd::geteuid()));
            format!("unix://{runtime_dir}/podman/podman.sock")
        }
        BackendKind::Podman => "unix:///run/podman/podman.sock".into(),
        _ => "unix:///var/run/docker.sock".into(),
    }
}

fn unreachable(kind: BackendKind, engine: &EngineConfig, detail: &str) -> Error {
    let fix = match kind {
        BackendKind::Podman => "start the API service, e.g. `podman system service --time=0 unix:///run/podman/podman.sock &` (rootless: `podman system service --time=0 &`), or set CONTAINER_HOST",
        _ => "start the Docker daemon (`dockerd &` or `systemctl start docker`), or set DOCKER_HOST",
    };
    let target = engine
        .url
        .as_deref()
        .map(|u| format!(" at {u}"))
        .unwrap_or_default();
    Error::BackendUnavailable {
        backend: kind.name().into(),
        reason: format!("cannot reach the engine{target} ({detail}); {fix}"),
    }
}

/// An error of the engine while doing `what`.
pub(super) fn engine_error(kind: BackendKind, what: &str, error: bollard::errors::Error) -> Error {
    Error::Engine {
        backend: kind.name().into(),
        operation: what.into(),
        source: error,
    }
}
