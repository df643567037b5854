//! Writes a run's plots and artifacts to host folders (`run --plots-dir`, `--artifacts-dir`).

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use llm_sandbox::{Artifact, PlotOutput};

/// Writes each plot as `dir/plot-<n>.<format>` (numbered from 1 in capture order), creating
/// `dir` if needed; returns the paths written.
pub fn write_plots(dir: &Path, plots: &[PlotOutput]) -> Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for (index, plot) in plots.iter().enumerate() {
        let name = format!("plot-{}.{}", index + 1, plot.format);
        written.push(write_new(dir, Path::new(&name), &plot.content())?);
    }
    Ok(written)
}

/// Writes each artifact under `dir` by its relative name; returns the paths written.
pub fn write_artifacts(dir: &Path, artifacts: &[Artifact]) -> Result<Vec<PathBuf>> {
    artifacts
        .iter()
        .map(|artifact| write_new(dir, Path::new(&artifact.name), &artifact.content))
        .collect()
}

/// Writes `content` to `dir/name`, where `name` must be a plain relative path, creating its
/// folders; never follows a symbolic link below `dir` and replaces existing regular files.
fn write_new(dir: &Path, name: &Path, content: &[u8]) -> Result<PathBuf> {
    if name.as_os_str().is_empty() || !name.components().all(|c| matches!(c, Component::Normal(_)))
    {
        bail!(
            "refusing to write {}: not a plain relative name",
            name.display()
        );
    }
    let target = dir.join(name);
    let mut current = dir.to_path_buf();
    let parents: Vec<_> = name
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for component in parents {
        current.push(component);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!(
                "refusing to write {}: {} is not a folder",
                target.display(),
                current.display()
            ),
            Err(_) => fs::create_dir(&current)
                .with_context(|| format!("creating {}", current.display()))?,
        }
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&target)
        .with_context(|| format!("writing {}", target.display()))?;
    file.write_all(content)
        .with_context(|| format!("writing {}", target.display()))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_outside_the_folder_and_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_new(dir.path(), Path::new("a/b.txt"), b"x").unwrap();
        assert_eq!(fs::read(dir.path().join("a/b.txt")).unwrap(), b"x");
        for bad in ["../x", "/etc/x", "a/../../x", ""] {
            assert!(
                write_new(dir.path(), Path::new(bad), b"x").is_err(),
                "{bad}"
            );
        }
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        assert!(write_new(dir.path(), Path::new("link/passwd"), b"x").is_err());
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("file")).unwrap();
        assert!(write_new(dir.path(), Path::new("file"), b"x").is_err());
    }
}
