//! The Docker and Podman backends (Podman through its Docker-compatible API), on bollard.
//!
//! A session is one container: the engine's minimal init (`Init`) keeps `sleep infinity` alive as
//! uid 65534, and every command runs through `exec` as uid 1000. Each command is wrapped so that
//! when it ends every other process of uid 1000 is killed (the run's leftovers; the init and its
//! child are out of reach), and a timeout kills them all the same way from a second exec. Files
//! travel through the archive API; archives that come back are treated as hostile.

mod client;
mod config;
mod seccomp;
mod workdir;

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, CreateImageOptionsBuilder, DownloadFromContainerOptionsBuilder,
    RemoveContainerOptionsBuilder, UploadToContainerOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use super::container::pending::Pending;
use super::container::wrapper;
use super::output::OutputBuffer;
use super::package_proxy::PackageProxy;
use super::{
    Backend, BackendKind, CloseReport, ExecOutput, ExecRequest, OutputCallback, OutputStream,
};
use crate::error::{Error, Result};
use crate::spec::{NetworkMode, Progress, ProgressSink, SandboxSpec};

use client::engine_error;
use config::{LABEL_MANAGED, LABEL_OWNER};

/// How an allowed install reaches its package index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Installs {
    /// Installs stay offline (not allowed), or use the network the container has anyway.
    AsCode,
    /// Through the package proxy, on a listener in the container's own network namespace (a
    /// root caller and a local engine): the index hosts and nothing else.
    Proxy,
    /// The engine's default network, attached while the installer runs (elsewhere).
    Attach(&'static str),
}

/// An open container sandbox.
pub struct DockerBackend {
    kind: BackendKind,
    client: Docker,
    container: Option<String>,
    isolation: Vec<(String, String)>,
    /// How an allowed install reaches its package index.
    installs: Installs,
    /// The image the container runs.
    image: String,
    /// An image this session built, removed at close unless `keep_template`.
    built_image: Option<String>,
    /// Whether close commits the container to a new image first.
    commit: bool,
    /// The container's OOM-kill count when last read (a new container has had none).
    oom_kills_seen: u64,
    /// Small uploads and removals the next command's wrapper carries out first.
    pending: Pending,
    /// The session's bounded workdir volume (see `workdir`), removed with the container.
    workdir_volume: Option<String>,
}

impl DockerBackend {
    /// Connects to the engine, makes sure the image is there, creates and starts the container.
    pub async fn open(kind: BackendKind, spec: &SandboxSpec) -> Result<DockerBackend> {
        let client = client::connect(kind, &spec.engine).await?;
        let (image, built_image) = match &spec.dockerfile {
            Some(dockerfile) => {
                let tag =
                    build_session_image(&client, kind, dockerfile, spec.progress.as_ref()).await?;
                let removable = (!spec.keep_template).then(|| tag.clone());
                (tag, removable)
            }
            None => {
                let image = spec
                    .image
                    .clone()
                    .ok_or_else(|| Error::invalid(format!("the {kind} backend needs an image")))?;
                ensure_image(&client, kind, &image, spec.progress.as_ref()).await?;
                (image, None)
            }
        };
        let owner = format!("{}:{}", hostname(), std::process::id());
        let installs = if !(spec.install_network && spec.network == NetworkMode::None) {
            Installs::AsCode
        } else if nix::unistd::geteuid().is_root() && is_local(kind, spec) {
            Installs::Proxy
        } else {
            Installs::Attach(config::install_network(kind))
        };
        let install_network = match installs {
            Installs::Attach(network) => Some(network),
            _ => None,
        };
        let name = format!("llm-sandbox-{}-{}", std::process::id(), next_id());
        let created = async {
            let volume =
                workdir::create(&client, kind, spec, &format!("{name}-workdir"), &owner).await?;
            let created = async {
                let plan = config::Placement {
                    owner: &owner,
                    workdir_volume: volume.as_deref(),
                    install_network,
                };
                let mut body = config::create_body(kind, spec, &image, &plan)?;
                apply_seccomp(&mut body, kind, spec)?;
                let options = CreateContainerOptionsBuilder::new().name(&name).build();
                client
                    .create_container(Some(options), body)
                    .await
                    .map_err(|e| engine_error(kind, "creating the container", e))
            }
            .await;
            match (created, &volume) {
                (Err(e), Some(volume)) => {
                    workdir::remove(&client, kind, volume).await?;
                    Err(e)
                }
                (created, _) => created.map(|created| (created, volume)),
            }
        }
        .await;
        let (created, workdir_volume) = match created {
            Ok(created) => created,
            Err(e) => {
                if let Some(built) = &built_image {
                    remove_image(&client, kind, built).await?;
                }
                return Err(e);
            }
        };
        let backend = DockerBackend {
            kind,
            client,
            container: Some(created.id.clone()),
            isolation: describe(kind, spec, &image),
            installs,
            image,
            built_image,
            commit: spec.commit_container,
            oom_kills_seen: 0,
            pending: Pending::default(),
            workdir_volume,
        };
        backend
            .client
            .start_container(
                &created.id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(|e| engine_error(kind, "starting the container", e))?; // dropping `backend` removes it
        backend.set_install_network(false).await?;
        if kind == BackendKind::Docker && backend.workdir_volume.is_some() {
            let files =
                workdir::image_files(&backend.client, kind, &backend.image, &spec.workdir, &owner)
                    .await?;
            if let Some(files) = files {
                let options = UploadToContainerOptionsBuilder::new()
                    .path(&spec.workdir)
                    .build();
                let body = bollard::body_full(files.as_ref().clone().into());
                backend
                    .client
                    .upload_to_container(&created.id, Some(options), body)
                    .await
                    .map_err(|e| engine_error(kind, "copying the image's workdir in", e))?;
            }
        }
        Ok(backend)
    }

    fn id(&self) -> Result<&str> {
        self.container.as_deref().ok_or(Error::NotOpen)
    }

    /// Starts `argv` as the code's user; returns the exec id and its streams.
    async fn start(
        &self,
        argv: Vec<String>,
        env: Vec<String>,
        cwd: &str,
        stdin: bool,
    ) -> Result<(String, StartExecResults)> {
        let id = self.id()?;
        let options = CreateExecOptions {
            cmd: Some(argv),
            env: Some(env),
            working_dir: Some(cwd.to_string()),
            user: Some(config::CODE_USER.to_string()),
            attach_stdin: Some(stdin),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            ..Default::default()
        };
        let exec = self
            .client
            .create_exec(id, options)
            .await
            .map_err(|e| engine_error(self.kind, "creating an exec", e))?;
        let started = self
            .client
            .start_exec(
                &exec.id,
                Some(StartExecOptions {
                    detach: false,
                    tty: false,
                    output_capacity: None,
                }),
            )
            .await
            .map_err(|e| engine_error(self.kind, "starting an exec", e))?;
        Ok((exec.id, started))
    }

    /// A listener on 127.0.0.1 in the container's own network namespace, for the package proxy
    /// (see [`listener_in_namespace`]).
    async fn listener_in_container(&self) -> Result<std::net::TcpListener> {
        let inspect = self
            .client
            .inspect_container(
                self.id()?,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .map_err(|e| engine_error(self.kind, "inspecting the container", e))?;
        let pid = inspect
            .state
            .and_then(|state| state.pid)
            .filter(|pid| *pid > 0)
            .ok_or_else(|| Error::Sandbox("the container has no running process".into()))?;
        tokio::task::spawn_blocking(move || listener_in_namespace(pid))
            .await
            .map_err(|e| Error::Sandbox(format!("opening the package proxy: {e}")))?
            .map_err(|e| Error::io("opening the package proxy in the container's network", e))
    }

    /// Attaches or detaches the install network (when installs may go online).
    async fn set_install_network(&self, attached: bool) -> Result<()> {
        let Installs::Attach(network) = self.installs else {
            return Ok(());
        };
        let container = Some(self.id()?.to_string());
        let result = if attached {
            let request = bollard::models::NetworkConnectRequest {
                container,
                endpoint_config: None,
            };
            self.client.connect_network(network, request).await
        } else {
            let request = bollard::models::NetworkDisconnectRequest {
                container,
                force: Some(true),
            };
            self.client.disconnect_network(network, request).await
        };
        result.map_err(|e| {
            engine_error(
                self.kind,
                &format!(
                    "{} network {network}",
                    if attached { "attaching" } else { "detaching" }
                ),
                e,
            )
        })
    }

    /// Runs one command and tells whether the OOM killer ended it.
    async fn run(
        &mut self,
        request: ExecRequest,
        on_output: OutputCallback<'_>,
    ) -> Result<ExecOutput> {
        let mut result = self.run_raw(request, on_output).await?;
        // A SIGKILL is the OOM killer's when the container's OOM-kill count went up.
        if result.exit_code == 137 && !result.timed_out {
            let kills = self.oom_kills().await?;
            result.out_of_memory = kills > self.oom_kills_seen;
            self.oom_kills_seen = kills;
        }
        Ok(result)
    }

    /// Runs one command through the wrapper, with its timeout and output limit.
    async fn run_raw(
        &mut self,
        request: ExecRequest,
        on_output: OutputCallback<'_>,
    ) -> Result<ExecOutput> {
        let started_at = Instant::now();
        let (changes, taken) = self.pending.take_args();
        let mut argv = vec![
            "/bin/sh".to_string(),
            "-c".into(),
            wrapper::RUN_WRAPPER.into(),
            "llm-sandbox".into(),
        ];
        argv.extend(changes);
        argv.extend(request.argv);
        let env = request
            .env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let (exec_id, started) = match self
            .start(argv, env, &request.cwd, request.stdin.is_some())
            .await
        {
            Ok(started) => started,
            Err(error) => {
                self.pending.restore(taken);
                return Err(error);
            }
        };
        let StartExecResults::Attached {
            mut output,
            mut input,
        } = started
        else {
            return Err(Error::Sandbox(
                "the engine detached an attached exec".into(),
            ));
        };
        let mut result = ExecOutput::default();
        let mut kept = OutputBuffer::new(request.output_limit, &mut result, on_output);
        let stdin = request.stdin;
        let transfer = async {
            if let Some(data) = stdin {
                // A program that stops reading is not an error of ours.
                let _ = input.write_all(&data).await;
            }
            let _ = input.shutdown().await;
            while let Some(item) = output.next().await {
                // A flood of output keeps the stream always ready: yield now and then, or the
                // timeout around this loop never gets to fire.
                tokio::task::consume_budget().await;
                let item =
                    item.map_err(|e| engine_error(self.kind, "reading the command's output", e))?;
                let (stream, message) = match item {
                    bollard::container::LogOutput::StdOut { message } => {
                        (OutputStream::Stdout, message)
                    }
                    bollard::container::LogOutput::StdErr { message } => {
                        (OutputStream::Stderr, message)
                    }
                    _ => continue,
                };
                kept.push(stream, &message);
            }
            Ok::<(), Error>(())
        };
        let finished = tokio::time::timeout(request.timeout, transfer).await;
        match finished {
            Ok(outcome) => {
                outcome?;
                result.exit_code = self.exit_code(&exec_id).await?;
            }
            Err(_) => {
                // Hang up on the command's streams first: an engine still pushing a flood of
                // output into them does not start the killing exec.
                drop(output);
                drop(input);
                self.kill_code_processes().await?;
                result.timed_out = true;
                result.exit_code = 137;
            }
        }
        result.duration = started_at.elapsed();
        Ok(result)
    }

    /// Kills every process of the code's user in the container. When no exec can start (a fork
    /// bomb holds every pid), the container is killed and started again: /tmp starts empty,
    /// and so does a bounded (tmpfs-backed) workdir; an unbounded workdir volume survives.
    async fn kill_code_processes(&self) -> Result<()> {
        let argv = vec!["/bin/sh".into(), "-c".into(), wrapper::KILL_ALL.into()];
        let (exec_id, started) = self.start(argv, Vec::new(), "/", false).await?;
        if let StartExecResults::Attached { mut output, .. } = started {
            while output.next().await.is_some() {}
        }
        if self.exit_code(&exec_id).await.ok() == Some(0) {
            return Ok(());
        }
        tracing::warn!(
            "{}: could not kill the run's processes from inside; restarting the container",
            self.kind
        );
        let id = self.id()?;
        let kill = self
            .client
            .kill_container(id, None::<bollard::query_parameters::KillContainerOptions>)
            .await;
        kill.map_err(|e| engine_error(self.kind, "killing the container", e))?;
        let wait = self
            .client
            .wait_container(id, None::<bollard::query_parameters::WaitContainerOptions>);
        let _ = wait.collect::<Vec<_>>().await;
        self.client
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
            .await
            .map_err(|e| engine_error(self.kind, "restarting the container", e))?;
        self.set_install_network(false).await
    }

    /// The exit code of a finished exec (the engine may take a moment to record it).
    async fn exit_code(&self, exec_id: &str) -> Result<i32> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let inspect = self
                .client
                .inspect_exec(exec_id)
                .await
                .map_err(|e| engine_error(self.kind, "inspecting an exec", e))?;
            match (inspect.running, inspect.exit_code) {
                (Some(false), Some(code)) => return Ok(code as i32),
                _ if Instant::now() >= deadline => {
                    return Err(Error::Sandbox(
                        "the engine did not report the command's exit code".into(),
                    ))
                }
                _ => tokio::time::sleep(Duration::from_millis(2)).await,
            }
        }
    }

    /// Carries out the pending changes now.
    async fn flush_pending(&mut self) -> Result<()> {
        if !self.pending.is_empty() {
            self.run_raw(internal_request(["true"]), &mut |_, _| {})
                .await?;
        }
        Ok(())
    }

    /// How many processes the kernel's OOM killer has killed in the container so far.
    async fn oom_kills(&mut self) -> Result<u64> {
        let request = internal_request(["/bin/sh", "-c", wrapper::READ_OOM_KILLS]);
        let output = self.run_raw(request, &mut |_, _| {}).await?;
        Ok(wrapper::oom_kills(&output.stdout))
    }

    /// Commits the container to a new tag beside its image's (never over it); returns the tag.
    async fn commit(&self) -> Result<String> {
        let id = self.id()?;
        let repository = match self.image.rsplit_once(':') {
            Some((repository, tag)) if !tag.contains('/') => repository,
            _ => self.image.as_str(),
        };
        let repository = format!("{repository}-committed");
        let seconds = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let tag = format!("{seconds}-{}-{}", std::process::id(), next_id());
        let options = bollard::query_parameters::CommitContainerOptionsBuilder::new()
            .container(id)
            .repo(&repository)
            .tag(&tag)
            .pause(true)
            .build();
        self.client
            .commit_container(options, bollard::models::ContainerConfig::default())
            .await
            .map_err(|e| engine_error(self.kind, "committing the container", e))?;
        Ok(format!("{repository}:{tag}"))
    }

    async fn remove(&mut self) -> Result<()> {
        if let Some(id) = self.container.take() {
            let options = RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            match self.client.remove_container(&id, Some(options)).await {
                Ok(())
                | Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => {}
                Err(e) => return Err(engine_error(self.kind, "removing the container", e)),
            }
        }
        match self.workdir_volume.take() {
            Some(volume) => workdir::remove(&self.client, self.kind, &volume).await,
            None => Ok(()),
        }
    }
}

impl Drop for DockerBackend {
    fn drop(&mut self) {
        let container = self.container.take();
        let built_image = self.built_image.take();
        let volume = self.workdir_volume.take();
        if container.is_none() && built_image.is_none() && volume.is_none() {
            return;
        }
        let (client, kind) = (self.client.clone(), self.kind);
        // Drop cannot await: remove the container (and an image this session built) from a
        // short-lived runtime on its own thread.
        let removal = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            if let Some(id) = container {
                let options = RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .v(true)
                    .build();
                let _ = runtime.block_on(client.remove_container(&id, Some(options)));
            }
            if let Some(volume) = volume {
                let _ = runtime.block_on(workdir::remove(&client, kind, &volume));
            }
            if let Some(image) = built_image {
                let _ = runtime.block_on(remove_image(&client, kind, &image));
            }
            Some(())
        });
        let _ = removal.join();
    }
}

#[async_trait]
impl Backend for DockerBackend {
    fn kind(&self) -> BackendKind {
        self.kind
    }

    async fn exec(
        &mut self,
        mut request: ExecRequest,
        on_output: OutputCallback<'_>,
    ) -> Result<ExecOutput> {
        match (request.package_index.take(), self.installs) {
            (Some(hosts), Installs::Proxy) => {
                let listener = self.listener_in_container().await?;
                let port = listener
                    .local_addr()
                    .map_err(|e| Error::io("opening the package proxy", e))?
                    .port();
                request.env.extend(PackageProxy::environment(port));
                let run = self.run(request, on_output);
                PackageProxy::new(&hosts).alongside(listener, run).await
            }
            (Some(_), Installs::Attach(_)) => {
                self.set_install_network(true).await?;
                let outcome = self.run(request, on_output).await;
                // Detach whatever happened: code must never run attached.
                self.set_install_network(false).await?;
                outcome
            }
            _ => self.run(request, on_output).await,
        }
    }

    async fn put_archive(&mut self, dest_dir: &str, tar: Vec<u8>) -> Result<()> {
        if self.pending.defer_unpack(dest_dir, &tar) {
            return Ok(());
        }
        self.flush_pending().await?;
        let id = self.id()?.to_string();
        let options = UploadToContainerOptionsBuilder::new()
            .path(dest_dir)
            .build();
        self.client
            .upload_to_container(&id, Some(options), bollard::body_full(tar.into()))
            .await
            .map_err(|e| engine_error(self.kind, &format!("copying into {dest_dir}"), e))
    }

    async fn get_archive(&mut self, path: &str, max_bytes: u64) -> Result<Vec<u8>> {
        // Some engines (Podman) follow a symlink named as the source: refuse it, as native does.
        let probe = internal_request(["test", "-L", path]);
        if self.run(probe, &mut |_, _| {}).await?.exit_code == 0 {
            return Err(Error::CopyRefused {
                reason: format!("{path} is a symbolic link"),
            });
        }
        let id = self.id()?.to_string();
        let options = DownloadFromContainerOptionsBuilder::new()
            .path(path)
            .build();
        let mut stream = self.client.download_from_container(&id, Some(options));
        let mut tar = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| engine_error(self.kind, &format!("copying {path} out"), e))?;
            if (tar.len() + chunk.len()) as u64 > max_bytes {
                return Err(Error::CopyTooLarge {
                    path: path.to_string(),
                    limit: max_bytes,
                });
            }
            tar.extend_from_slice(&chunk);
        }
        Ok(tar)
    }

    /// Deferred to the next command (see `pending`); a failure to remove is silent.
    async fn remove(&mut self, path: &str) -> Result<()> {
        self.pending.remove(path);
        Ok(())
    }

    fn isolation(&self) -> Vec<(String, String)> {
        self.isolation.clone()
    }

    async fn close(&mut self) -> Result<CloseReport> {
        let mut report = CloseReport::default();
        if self.commit && self.container.is_some() {
            self.flush_pending().await?;
            let tag = self.commit().await?;
            tracing::info!("{}: committed the session to {tag}", self.kind);
            report.committed_image = Some(tag);
        }
        self.remove().await?;
        if let Some(image) = self.built_image.take() {
            remove_image(&self.client, self.kind, &image).await?;
        }
        Ok(report)
    }
}

/// Builds image `tag` from `dockerfile` (a path relative to `context_dir`) on the engine of
/// `kind`, reporting progress as it goes (e.g. `llm-sandbox images build`).
pub async fn build(
    kind: BackendKind,
    engine: &crate::spec::EngineConfig,
    context_dir: &std::path::Path,
    dockerfile: &str,
    tag: &str,
    sink: Option<&ProgressSink>,
) -> Result<()> {
    let client = client::connect(kind, engine).await?;
    build_image(&client, kind, context_dir, dockerfile, tag, sink).await
}

/// Builds the session image from host file `dockerfile` (context: its folder); returns the tag.
async fn build_session_image(
    client: &Docker,
    kind: BackendKind,
    dockerfile: &std::path::Path,
    sink: Option<&ProgressSink>,
) -> Result<String> {
    if !dockerfile.is_file() {
        return Err(Error::invalid(format!(
            "dockerfile {} does not exist",
            dockerfile.display()
        )));
    }
    let context_dir = dockerfile
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = dockerfile
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            Error::invalid(format!("dockerfile {} names no file", dockerfile.display()))
        })?;
    let tag = format!(
        "llm-sandbox-built/{}-{}:latest",
        std::process::id(),
        next_id()
    );
    build_image(client, kind, context_dir, name, &tag, sink).await?;
    Ok(tag)
}

/// Whether the engine runs on this host (a unix socket we reach ourselves): then its
/// containers' processes are in our pid namespace and its files on our filesystem.
fn is_local(kind: BackendKind, spec: &SandboxSpec) -> bool {
    let variable = match kind {
        BackendKind::Podman => "CONTAINER_HOST",
        _ => "DOCKER_HOST",
    };
    let url = spec
        .engine
        .url
        .clone()
        .or_else(|| std::env::var(variable).ok())
        .unwrap_or_else(|| client::default_url(kind));
    spec.engine.client.is_none() && (url.starts_with("unix://") || url.starts_with('/'))
}

/// A listener on 127.0.0.1 of the network namespace of host process `pid`, made by a thread
/// that enters the namespace for the purpose (it needs root over it). The socket stays in that
/// namespace; the library serves it from outside.
fn listener_in_namespace(pid: i64) -> std::io::Result<std::net::TcpListener> {
    use std::os::fd::AsFd;
    let namespace = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
    std::thread::spawn(move || {
        nix::sched::setns(namespace.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
        std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
    })
    .join()
    .map_err(|_| std::io::Error::other("the thread entering the container's network panicked"))?
}

/// Gives the container the project's seccomp profile (see `seccomp`), unless the caller set a
/// seccomp option of their own. Docker takes it inline; Podman reads it from a file on its
/// host, so only a local Podman (a unix socket) gets it: elsewhere Podman's default stays,
/// with a warning.
fn apply_seccomp(
    body: &mut bollard::models::ContainerCreateBody,
    kind: BackendKind,
    spec: &SandboxSpec,
) -> Result<()> {
    let host = body.host_config.get_or_insert_with(Default::default);
    let options = host.security_opt.get_or_insert_with(Vec::new);
    if options.iter().any(|o| o.starts_with("seccomp")) {
        return Ok(());
    }
    if kind == BackendKind::Docker {
        options.push(seccomp::docker_option());
        return Ok(());
    }
    if is_local(kind, spec) {
        let path = seccomp::podman_profile_file()?;
        options.push(format!("seccomp={}", path.display()));
    } else {
        tracing::warn!(
            "podman: keeping Podman's default seccomp profile, which allows namespaces, keyrings and vsock sockets (the engine is not local, so it cannot read the project's profile)"
        );
    }
    Ok(())
}

/// Removes an image this session built.
async fn remove_image(client: &Docker, kind: BackendKind, image: &str) -> Result<()> {
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::new()
        .force(true)
        .build();
    client
        .remove_image(image, Some(options), None)
        .await
        .map(|_| ())
        .map_err(|e| engine_error(kind, &format!("removing the built image {image}"), e))
}

/// Builds image `tag` from `dockerfile` within `context_dir`. Build output goes to the
/// progress sink and the logs as it comes.
async fn build_image(
    client: &Docker,
    kind: BackendKind,
    context_dir: &std::path::Path,
    dockerfile: &str,
    tag: &str,
    sink: Option<&ProgressSink>,
) -> Result<()> {
    let mut context = tar::Builder::new(Vec::new());
    context.follow_symlinks(false);
    context.append_dir_all(".", context_dir).map_err(|e| {
        Error::io(
            format!("packing the build context {}", context_dir.display()),
            e,
        )
    })?;
    let context = context
        .into_inner()
        .map_err(|e| Error::io("packing the build context", e))?;
    let options = bollard::query_parameters::BuildImageOptionsBuilder::new()
        .dockerfile(dockerfile)
        .t(tag)
        .rm(true)
        .forcerm(true)
        .build();
    let task = format!("{kind}: building {tag} from {dockerfile}");
    let report = |message: &str, done: bool| {
        let progress = Progress {
            task: task.clone(),
            message: message.into(),
            current: None,
            total: None,
            done,
        };
        ProgressSink::report(sink, progress);
    };
    report("starting", false);
    let mut build = client.build_image(options, None, Some(bollard::body_full(context.into())));
    while let Some(step) = build.next().await {
        let step = step.map_err(|e| engine_error(kind, &format!("building {tag}"), e))?;
        if let Some(line) = step
            .stream
            .as_deref()
            .map(str::trim_end)
            .filter(|l| !l.is_empty())
        {
            report(line, false);
        }
        if let Some(detail) = step.error_detail.and_then(|d| d.message) {
            return Err(Error::Sandbox(format!(
                "{kind}: building {tag} failed: {detail}"
            )));
        }
    }
    report("done", true);
    Ok(())
}

/// Uses a local image, or pulls it (progress in the logs); a clear error when neither works.
async fn ensure_image(
    client: &Docker,
    kind: BackendKind,
    image: &str,
    sink: Option<&ProgressSink>,
) -> Result<()> {
    if client.inspect_image(image).await.is_ok() {
        return Ok(());
    }
    let task = format!("{kind}: pulling {image}");
    let step = |message: String, current: Option<u64>, total: Option<u64>, done: bool| Progress {
        task: task.clone(),
        message,
        current,
        total,
        done,
    };
    ProgressSink::report(sink, step("starting".into(), None, None, false));
    let options = CreateImageOptionsBuilder::new().from_image(image).build();
    let mut pull = client.create_image(Some(options), None, None);
    let mut last_status = String::new();
    while let Some(progress) = pull.next().await {
        match progress {
            Ok(info) => {
                let status = format!("{} {}", info.status.unwrap_or_default(), info.progress.unwrap_or_default());
                if status != last_status {
                    let detail = info.progress_detail.unwrap_or_default();
                    let (current, total) = (detail.current.map(|c| c as u64), detail.total.map(|t| t as u64));
                    ProgressSink::report(sink, step(status.clone(), current, total, false));
                    last_status = status;
                }
            }
            Err(e) => {
                return Err(Error::BackendUnavailable {
                    backend: kind.name().into(),
                    reason: format!(
                        "image `{image}` is not available locally and pulling it failed ({e}); build the project's images offline with `images/build-offline` or pass an image that exists"
                    ),
                })
            }
        }
    }
    ProgressSink::report(sink, step("done".into(), None, None, true));
    Ok(())
}

/// A small command of the backend's own (not the user's), run as the code's user.
fn internal_request<const N: usize>(argv: [&str; N]) -> ExecRequest {
    ExecRequest {
        argv: argv.iter().map(|a| a.to_string()).collect(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: "/".into(),
        timeout: Duration::from_secs(30),
        output_limit: 4096,
        ..Default::default()
    }
}

fn next_id() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "unknown".into())
}

fn describe(kind: BackendKind, spec: &SandboxSpec, image: &str) -> Vec<(String, String)> {
    let network = match &spec.network {
        NetworkMode::None => "none".to_string(),
        NetworkMode::Host => "host (shared knowingly)".to_string(),
        NetworkMode::Other(mode) => mode.clone(),
    };
    vec![
        ("engine".into(), format!("{kind}, image {image}")),
        ("network".into(), network),
        (
            "user".into(),
            format!(
                "code as uid {}, all capabilities dropped, no-new-privileges",
                config::CODE_USER
            ),
        ),
        (
            "filesystem".into(),
            format!(
                "read-only root; writable {} ({}) and /tmp (tmpfs)",
                spec.workdir,
                match spec.limits.disk {
                    Some(bytes) if !spec.commit_container =>
                        format!("tmpfs volume of {} MiB", bytes >> 20),
                    _ => "volume, unbounded".to_string(),
                }
            ),
        ),
        ("limits".into(), spec.limits.describe()),
    ]
}

/// Checks that the engine answers; returns its version and the project's images it holds.
pub async fn probe(
    kind: BackendKind,
    engine: &crate::spec::EngineConfig,
) -> Result<Vec<(String, String)>> {
    let client = client::connect(kind, engine).await?;
    let version = client
        .version()
        .await
        .map_err(|e| engine_error(kind, "asking the version", e))?;
    let images = client
        .list_images(None::<bollard::query_parameters::ListImagesOptions>)
        .await
        .map_err(|e| engine_error(kind, "listing images", e))?;
    let mut ours: Vec<String> = images
        .iter()
        .flat_map(|image| image.repo_tags.iter())
        .filter(|tag| tag.starts_with("llm-sandbox/") || tag.starts_with("localhost/llm-sandbox/"))
        .cloned()
        .collect();
    ours.sort();
    Ok(vec![
        (
            "engine".into(),
            format!(
                "{kind} {} (API {})",
                version.version.unwrap_or_default(),
                version.api_version.unwrap_or_default()
            ),
        ),
        (
            "images".into(),
            if ours.is_empty() {
                "none of the project's images (run images/build-offline)".into()
            } else {
                ours.join(", ")
            },
        ),
    ])
}

/// Removes containers (and workdir volumes) this project created whose creating process is
/// gone (or all of them with `all`); returns their names. Containers of other hosts are left alone unless `all`.
pub async fn gc(
    kind: BackendKind,
    engine: &crate::spec::EngineConfig,
    all: bool,
) -> Result<Vec<String>> {
    let client = client::connect(kind, engine).await?;
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!("{LABEL_MANAGED}=true")],
    )]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    let containers = client
        .list_containers(Some(options))
        .await
        .map_err(|e| engine_error(kind, "listing containers", e))?;
    let this_host = hostname();
    let abandoned = |owner: &str| {
        all || match owner.rsplit_once(':') {
            Some((host, pid)) if host == this_host => {
                !std::path::Path::new("/proc").join(pid).exists()
            }
            _ => false,
        }
    };
    let mut removed = Vec::new();
    for container in containers {
        let owner = container
            .labels
            .as_ref()
            .and_then(|l| l.get(LABEL_OWNER))
            .cloned()
            .unwrap_or_default();
        if !abandoned(&owner) {
            continue;
        }
        let Some(id) = container.id else { continue };
        let options = RemoveContainerOptionsBuilder::new()
            .force(true)
            .v(true)
            .build();
        client
            .remove_container(&id, Some(options))
            .await
            .map_err(|e| engine_error(kind, "removing a container", e))?;
        let name = container
            .names
            .and_then(|n| n.first().cloned())
            .unwrap_or(id);
        removed.push(name.trim_start_matches('/').to_string());
    }
    // Workdir volumes of the removed containers, and of sessions that died between creating
    // their volume and their container.
    removed.extend(workdir::gc(&client, kind, abandoned).await?);
    Ok(removed)
}
