//! Writes a run's plots and artifacts to host folders (`run --plots-dir`, `--artifacts-dir`).
//!
//! Names come from the sandbox, so nothing on the host is ever replaced or followed: the
//! artifacts folder must be new or empty, every file is created anew (`O_CREAT | O_EXCL |
//! O_NOFOLLOW`, mode 0644), folders below it are made by us, and names with a hidden component
//! (`.git/hooks/…`, `.bashrc`) are refused. A file that cannot be written is reported as
//! omitted, never as a failure of the run.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use llm_sandbox::{Artifact, Omitted, PlotOutput};

/// The plot formats written, and their file extensions.
const PLOT_EXTENSIONS: [(&str, &str); 10] = [
    ("png", "png"),
    ("jpeg", "jpg"),
    ("jpg", "jpg"),
    ("svg", "svg"),
    ("pdf", "pdf"),
    ("html", "html"),
    ("gif", "gif"),
    ("webp", "webp"),
    ("bmp", "bmp"),
    ("tiff", "tiff"),
];

/// What saving wrote, and what it could not.
#[derive(Default)]
pub struct Saved {
    pub written: Vec<PathBuf>,
    pub omitted: Vec<Omitted>,
}

/// Checks before a run that `dir` can take the artifacts: absent (it is created then) or an
/// empty folder that is not a link.
pub fn check_artifacts_dir(dir: &Path) -> Result<()> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("checking --artifacts-dir {}", dir.display())),
        Ok(meta) if !meta.is_dir() => bail!(
            "--artifacts-dir {} exists and is not a folder; name a new or empty folder",
            dir.display()
        ),
        Ok(_) => {
            let mut entries = fs::read_dir(dir)
                .with_context(|| format!("reading --artifacts-dir {}", dir.display()))?;
            if entries.next().is_some() {
                bail!(
                    "--artifacts-dir {} is not empty; name a new or empty folder (files the sandbox returns never replace files of yours)",
                    dir.display()
                );
            }
            Ok(())
        }
    }
}

/// Writes each plot as `dir/plot-<n>.<extension>` (numbered from 1 in capture order).
pub fn write_plots(dir: &Path, plots: &[PlotOutput], saved: &mut Saved) {
    for (index, plot) in plots.iter().enumerate() {
        let label = format!("plot {}", index + 1);
        let Some((_, extension)) = PLOT_EXTENSIONS.iter().find(|(f, _)| *f == plot.format) else {
            saved.omit(
                &label,
                format!("format {:?} is not one written to files", plot.format),
            );
            continue;
        };
        let name = format!("plot-{}.{extension}", index + 1);
        saved.write(dir, &label, Path::new(&name), &plot.content());
    }
}

/// Writes each artifact under `dir` by its relative name.
pub fn write_artifacts(dir: &Path, artifacts: &[Artifact], saved: &mut Saved) {
    for artifact in artifacts {
        saved.write(
            dir,
            &artifact.name,
            Path::new(&artifact.name),
            &artifact.content,
        );
    }
}

impl Saved {
    fn omit(&mut self, name: &str, reason: String) {
        self.omitted.push(Omitted {
            name: name.to_string(),
            size: None,
            reason,
        });
    }

    fn write(&mut self, dir: &Path, label: &str, name: &Path, content: &[u8]) {
        match write_new(dir, name, content) {
            Ok(path) => self.written.push(path),
            Err(error) => self.omit(label, format!("not written: {error:#}")),
        }
    }
}

/// Writes `content` to the new file `dir/name`, where `name` is a plain relative path without
/// hidden components; creates `dir` and the folders of `name` as needed, never following a link.
fn write_new(dir: &Path, name: &Path, content: &[u8]) -> Result<PathBuf> {
    let plain = |c: Component| matches!(c, Component::Normal(part) if !part.to_string_lossy().starts_with('.'));
    if name.as_os_str().is_empty() || !name.components().all(plain) {
        bail!("not a plain relative name without hidden parts");
    }
    make_dir(dir)?;
    let mut current = dir.to_path_buf();
    if let Some(parent) = name.parent() {
        for component in parent.components() {
            current.push(component);
            make_dir(&current)?;
        }
    }
    let target = dir.join(name);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&target)
        .with_context(|| format!("creating {}", target.display()))?;
    file.write_all(content)
        .with_context(|| format!("writing {}", target.display()))?;
    Ok(target)
}

/// Creates folder `path` (0755), or accepts it when it is already a folder and not a link.
fn make_dir(path: &Path) -> Result<()> {
    match fs::DirBuilder::new().mode(0o755).create(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            match fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => Ok(()),
                _ => bail!("{} is not a folder", path.display()),
            }
        }
        Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn names_outside_the_folder_hidden_names_and_links_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        write_new(dir.path(), Path::new("a/b.txt"), b"x").unwrap();
        assert_eq!(fs::read(dir.path().join("a/b.txt")).unwrap(), b"x");
        let mode = fs::metadata(dir.path().join("a/b.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7133, 0, "{mode:o}");
        for bad in [
            "../x",
            "/etc/x",
            "a/../../x",
            "",
            ".bashrc",
            "x/.git/hooks/pre-commit",
        ] {
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

    #[test]
    fn existing_files_are_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let hook = dir.path().join("build.sh");
        fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(write_new(dir.path(), Path::new("build.sh"), b"echo PWNED").is_err());
        assert_eq!(fs::read_to_string(&hook).unwrap(), "#!/bin/sh\nexit 0\n");
        assert!(
            check_artifacts_dir(dir.path()).is_err(),
            "a non-empty folder"
        );
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        check_artifacts_dir(&empty).unwrap();
        check_artifacts_dir(&dir.path().join("new")).unwrap();
    }
}
