//! Files in and out of the sandbox, and installing packages into it.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::state::{SandboxSession, RUN_COUNTER};
use crate::archive;
use crate::error::{Error, Result};
use crate::language::validate_library_name;
use crate::paths::split_parent;
use crate::spec::NetworkMode;

impl SandboxSession {
    /// Installs packages with the language's package manager into the session's workdir.
    ///
    /// Names are validated and passed as argv. The installer runs inside the sandbox, so that
    /// code cannot influence it: from `/`, with a fresh home directory no code has seen, with
    /// an environment of its own (not the session's: no `PYTHONPATH`, `NODE_PATH`, `GEM_HOME`
    /// or user variables) and its configuration files pinned. With `allow_install_network` it
    /// reaches the language's package index and nothing else (native: an HTTPS proxy that
    /// allows the index hosts alone; containers: the engine's default network while it runs).
    pub async fn install<S: AsRef<str>>(&self, libraries: &[S]) -> Result<()> {
        let libraries: Vec<String> = libraries.iter().map(|l| l.as_ref().to_string()).collect();
        if libraries.is_empty() {
            return Ok(());
        }
        for name in &libraries {
            validate_library_name(name)?;
        }
        let workdir = &self.spec.workdir;
        let argv = self.handler.install_command(&libraries, workdir)?;
        let home_name = format!(
            ".llm-sandbox/install-home-{}-{}",
            RUN_COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
        );
        let home = format!("{workdir}/{home_name}");
        let mut packer = archive::Packer::new();
        packer.parents_of(&home_name)?;
        packer.dir(&home_name)?;
        let home_tar = packer.finish()?;
        let mut env = vec![
            ("PATH".to_string(), self.spec.search_path.join(":")),
            ("HOME".into(), home.clone()),
            ("USER".into(), "sandbox".into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("TMPDIR".into(), "/tmp".into()),
        ];
        env.extend(self.handler.install_environment(&home));
        let network = self.spec.install_network && self.spec.network == NetworkMode::None;
        let mut state = self.state.lock().await;
        let (backend, left) = self.open_backend(&mut state).await?;
        for path in self.handler.installer_config_files(workdir) {
            backend.remove(&path).await?;
        }
        backend.put_archive(workdir, home_tar).await?;
        let mut request = self.request(
            argv,
            env,
            Some("/".into()),
            self.install_timeout.min(left),
            None,
        );
        request.package_index = network.then(|| self.handler.package_index_hosts());
        let output = self.exec(backend, request).await;
        let removed = backend.remove(&home).await;
        drop(state);
        let result = self.result_of(output?, self.install_timeout, left).await?;
        removed?;
        if result.timed_out {
            return Err(Error::Timeout {
                operation: format!("installing {}", libraries.join(" ")),
                limit: self.install_timeout,
            });
        }
        if result.exit_code != 0 {
            let hint = if self.spec.network == NetworkMode::None && !self.spec.install_network {
                " (the sandbox has no network; allow installs to reach the package index with `allow_install_network(true)`)"
            } else {
                ""
            };
            let detail: String = result
                .stderr
                .lines()
                .rev()
                .take(5)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            return Err(Error::InstallFailed {
                libraries: libraries.join(" "),
                exit_code: result.exit_code,
                hint: hint.into(),
                detail,
            });
        }
        Ok(())
    }

    /// Copies host file or directory `src` into the sandbox as `dest` (relative to the workdir
    /// unless absolute). Host symlinks inside `src` are copied as links, never followed; what
    /// is copied belongs to the sandbox user. Container backends write only under the workdir
    /// (or into an existing directory of a writable volume).
    pub async fn copy_to_runtime(&self, src: impl AsRef<Path>, dest: &str) -> Result<()> {
        let dest = self.sandbox_path(dest)?;
        // Under the workdir, missing parents are created (as the sandbox user) by the archive.
        let workdir_prefix = format!("{}/", self.spec.workdir);
        let (base, name) = match dest.strip_prefix(&workdir_prefix) {
            Some(relative) => (self.spec.workdir.as_str(), relative),
            None => split_parent(&dest)?,
        };
        let mut packer = archive::Packer::new();
        packer.parents_of(name)?;
        packer.tree(src.as_ref(), name)?;
        let tar = packer.finish()?;
        let mut state = self.state.lock().await;
        let (backend, _) = self.open_backend(&mut state).await?;
        backend.put_archive(base, tar).await
    }

    /// Copies sandbox file or directory `src` (relative to the workdir unless absolute) to host
    /// path `dest`. Links, devices and paths escaping `dest` are refused; size is bounded.
    pub async fn copy_from_runtime(&self, src: &str, dest: impl AsRef<Path>) -> Result<()> {
        let src = self.sandbox_path(src)?;
        let (_, name) = split_parent(&src)?;
        let tar = {
            let mut state = self.state.lock().await;
            let (backend, _) = self.open_backend(&mut state).await?;
            backend.get_archive(&src, self.copy_limit).await?
        };
        archive::extract(&tar, name, dest.as_ref())
    }
}
