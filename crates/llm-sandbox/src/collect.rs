//! Bringing a run's plots and output-folder files out of the sandbox, within bounds.
//!
//! A folder comes out as one archive when it fits; otherwise it is listed (with `find`, in the
//! sandbox) and its files are picked one by one, in name order, until a limit is reached. What
//! is left out is reported, never dropped silently.

use crate::artifacts::{
    self, Artifact, ArtifactLimits, CollectedFile, LeftOut, Omitted, PlotOutput,
};
use crate::backend::{Backend, ExecRequest};
use crate::paths::split_parent;

/// Collects from one session's backend after a run.
pub(crate) struct Collector<'a> {
    backend: &'a mut Box<dyn Backend>,
    limits: ArtifactLimits,
    /// How to run the listing command (environment, directory, timeout); its argv is set here.
    listing: ExecRequest,
}

impl<'a> Collector<'a> {
    pub fn new(
        backend: &'a mut Box<dyn Backend>,
        limits: ArtifactLimits,
        listing: ExecRequest,
    ) -> Self {
        Collector {
            backend,
            limits,
            listing,
        }
    }

    /// The plots the capture hook wrote to `plots_dir` during the run.
    pub async fn plots(&mut self, plots_dir: &str, omitted: &mut Vec<Omitted>) -> Vec<PlotOutput> {
        // Each plot is two files: the image and its description.
        let limits = ArtifactLimits {
            max_files: self.limits.max_files.saturating_mul(2).saturating_add(1),
            ..self.limits
        };
        let files = self.files(plots_dir, limits, omitted).await;
        let (plots, errors) = artifacts::plots_from(files, omitted);
        for error in errors {
            tracing::warn!("plot capture: {}", error.trim_end());
        }
        plots
    }

    /// The files of the output folder `dir`, which are then removed from the sandbox (all of
    /// it when nothing was left out, else only what was returned).
    pub async fn artifacts(&mut self, dir: &str, omitted: &mut Vec<Omitted>) -> Vec<Artifact> {
        let already_omitted = omitted.len();
        let files = self.files(dir, self.limits, omitted).await;
        let removals = if omitted.len() == already_omitted {
            vec![dir.to_string()]
        } else {
            files.iter().map(|f| format!("{dir}/{}", f.name)).collect()
        };
        for path in removals {
            if let Err(error) = self.backend.remove(&path).await {
                tracing::warn!("could not empty the output folder: {error}");
            }
        }
        artifacts::artifacts_from(files)
    }

    /// The regular files under sandbox directory `dir` within `limits`.
    async fn files(
        &mut self,
        dir: &str,
        limits: ArtifactLimits,
        omitted: &mut Vec<Omitted>,
    ) -> Vec<CollectedFile> {
        let Ok((_, top)) = split_parent(dir) else {
            return Vec::new();
        };
        // Room for the tar headers of the files allowed, and a little more.
        let archive_limit = limits
            .max_bytes
            .saturating_add(1024 * (limits.max_files as u64 + 16));
        let tar = match self.backend.get_archive(dir, archive_limit).await {
            Ok(tar) => tar,
            Err(error) => {
                tracing::debug!("collecting {dir} in one archive failed ({error}); listing it");
                return self.files_listed(dir, limits, omitted).await;
            }
        };
        artifacts::read_files(&tar, top, dir, limits, omitted).unwrap_or_else(|error| {
            omitted.push(whole_folder(dir, format!("{error}; left in the sandbox")));
            Vec::new()
        })
    }

    /// [`files`](Self::files) for a directory too big for one archive.
    async fn files_listed(
        &mut self,
        dir: &str,
        limits: ArtifactLimits,
        omitted: &mut Vec<Omitted>,
    ) -> Vec<CollectedFile> {
        let mut request = self.listing.clone();
        request.argv = ["find", dir, "-type", "f", "-printf", "%s %P\\0"]
            .map(String::from)
            .to_vec();
        request.output_limit = 16 << 20;
        let listing = match self.backend.exec(request, &mut |_, _| {}).await {
            Ok(output) if output.exit_code == 0 && !output.stdout_truncated => output.stdout,
            Ok(output) => {
                let detail = String::from_utf8_lossy(&output.stderr).trim().to_string();
                if !detail.is_empty() {
                    omitted.push(whole_folder(dir, format!("could not be listed ({detail})")));
                }
                return Vec::new();
            }
            Err(error) => {
                omitted.push(whole_folder(dir, format!("could not be listed: {error}")));
                return Vec::new();
            }
        };
        let mut entries: Vec<(String, u64)> = listing
            .split(|b| *b == 0)
            .filter_map(|entry| {
                let entry = std::str::from_utf8(entry).ok()?;
                let (size, name) = entry.split_once(' ')?;
                Some((name.to_string(), size.parse().ok()?))
            })
            .collect();
        entries.sort();
        let (mut files, mut bytes, mut left_out) = (Vec::new(), 0u64, LeftOut::default());
        for (name, size) in entries {
            let path = format!("{dir}/{name}");
            if let Some(reason) = limits.refuses(files.len(), bytes, size) {
                left_out.add(path, Some(size), reason);
                continue;
            }
            let one = ArtifactLimits {
                max_files: 1,
                max_bytes: size,
            };
            let Ok((parent, base)) = split_parent(&path) else {
                continue;
            };
            let read = match self.backend.get_archive(&path, size + 4096).await {
                Ok(tar) => artifacts::read_files(&tar, base, parent, one, omitted),
                Err(error) => Err(error),
            };
            match read {
                Ok(mut read) if read.len() == 1 => {
                    let mut file = read.remove(0);
                    bytes += file.content.len() as u64;
                    file.name = name;
                    files.push(file);
                }
                Ok(_) => {}
                Err(error) => left_out.add(path, Some(size), error.to_string()),
            }
        }
        left_out.report(omitted);
        files
    }
}

/// A folder none of whose files came back, and why.
fn whole_folder(dir: &str, reason: String) -> Omitted {
    Omitted {
        name: dir.to_string(),
        size: None,
        reason,
    }
}
