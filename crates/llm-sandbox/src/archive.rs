//! Tar archives for copying files in and out of a sandbox.
//!
//! Archives that come back from a sandbox are hostile: [`extract`] refuses absolute paths,
//! `..`, links, devices and anything that would write outside the destination, and never
//! follows a symlink that already exists on the host.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use crate::spec::SANDBOX_UID;

/// Builds archives bound for a sandbox: every entry is owned by the sandbox user, so that the
/// code may change and delete what was copied in, whatever the backend.
pub(crate) struct Packer {
    builder: tar::Builder<Vec<u8>>,
}

impl Packer {
    pub(crate) fn new() -> Self {
        Packer {
            builder: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64, mtime: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(mtime);
        header.set_uid(SANDBOX_UID.into());
        header.set_gid(SANDBOX_UID.into());
        header
    }

    fn fail(name: &str) -> impl Fn(io::Error) -> Error + '_ {
        move |e| Error::io(format!("packing {name}"), e)
    }

    /// Adds a directory entry.
    pub(crate) fn dir(&mut self, name: &str) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Directory, 0o755, 0, now());
        self.builder
            .append_data(&mut header, name, io::empty())
            .map_err(Self::fail(name))
    }

    /// Adds directory entries for every ancestor of `name` (`a` and `a/b` for `a/b/c`).
    pub(crate) fn parents_of(&mut self, name: &str) -> Result<()> {
        let parts: Vec<&str> = name.split('/').collect();
        for end in 1..parts.len() {
            self.dir(&parts[..end].join("/"))?;
        }
        Ok(())
    }

    /// Adds a regular file with `data`.
    pub(crate) fn file(&mut self, name: &str, data: &[u8], mode: u32) -> Result<()> {
        let mut header = Self::header(tar::EntryType::Regular, mode, data.len() as u64, now());
        self.builder
            .append_data(&mut header, name, data)
            .map_err(Self::fail(name))
    }

    /// Adds host `source` (file or directory, recursively) as `name`. Symlinks are stored as
    /// links, never followed; sockets, fifos and devices are refused.
    pub(crate) fn tree(&mut self, source: &Path, name: &str) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::symlink_metadata(source)
            .map_err(|e| Error::io(format!("reading {}", source.display()), e))?;
        let mode = meta.mode() & 0o777;
        let mtime = meta.mtime().max(0) as u64;
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = fs::read_link(source)
                .map_err(|e| Error::io(format!("reading {}", source.display()), e))?;
            let mut header = Self::header(tar::EntryType::Symlink, 0o777, 0, mtime);
            self.builder
                .append_link(&mut header, name, target)
                .map_err(Self::fail(name))
        } else if kind.is_dir() {
            let mut header = Self::header(tar::EntryType::Directory, mode, 0, mtime);
            self.builder
                .append_data(&mut header, name, io::empty())
                .map_err(Self::fail(name))?;
            let mut children: Vec<_> = fs::read_dir(source)
                .map_err(|e| Error::io(format!("reading {}", source.display()), e))?
                .collect::<io::Result<_>>()
                .map_err(|e| Error::io(format!("reading {}", source.display()), e))?;
            children.sort_by_key(|entry| entry.file_name());
            for child in children {
                let child_name = format!("{name}/{}", child.file_name().to_string_lossy());
                self.tree(&child.path(), &child_name)?;
            }
            Ok(())
        } else if kind.is_file() {
            let file = fs::File::open(source)
                .map_err(|e| Error::io(format!("reading {}", source.display()), e))?;
            let mut header = Self::header(tar::EntryType::Regular, mode, meta.len(), mtime);
            self.builder
                .append_data(&mut header, name, file)
                .map_err(Self::fail(name))
        } else {
            Err(Error::invalid(format!(
                "{} is not a regular file, directory or link",
                source.display()
            )))
        }
    }

    /// The finished archive.
    pub(crate) fn finish(self) -> Result<Vec<u8>> {
        self.builder
            .into_inner()
            .map_err(|e| Error::io("finishing the archive", e))
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Extracts a hostile tar whose top entry is `top` so that `top` becomes host path `dest`.
///
/// Only regular files and directories are accepted; modes lose setuid, setgid and sticky bits.
pub fn extract(tar: &[u8], top: &str, dest: &Path) -> Result<()> {
    let refuse = |reason: String| Error::CopyRefused { reason };
    let mut archive = tar::Archive::new(tar);
    let entries = archive
        .entries()
        .map_err(|e| Error::io("reading the archive", e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io("reading the archive", e))?;
        let member = entry
            .path()
            .map_err(|e| Error::io("reading the archive", e))?
            .into_owned();
        let target = map_member(&member, top, dest)
            .ok_or_else(|| refuse(format!("member {member:?} lies outside {top:?}")))?;
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
        ensure_no_symlink(dest, &target)?;
        if kind.is_dir() {
            match fs::create_dir(&target) {
                Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                    return Err(Error::io(format!("creating {}", target.display()), e))
                }
                _ => {}
            }
            fs::set_permissions(&target, fs::Permissions::from_mode(mode | 0o700))
                .map_err(|e| Error::io(format!("setting mode of {}", target.display()), e))?;
        } else if kind.is_file() {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&target)
                .map_err(|e| Error::io(format!("creating {}", target.display()), e))?;
            io::copy(&mut entry, &mut file)
                .map_err(|e| Error::io(format!("writing {}", target.display()), e))?;
        } else if kind.is_symlink() {
            return Err(refuse(format!(
                "{member:?} is a symbolic link (links are not copied)"
            )));
        } else {
            return Err(refuse(format!(
                "{member:?} is a {kind:?} entry (links and devices are not copied)"
            )));
        }
    }
    Ok(())
}

/// Maps archive member `member` (which must start with `top`) to a path under `dest`.
pub(crate) fn map_member(member: &Path, top: &str, dest: &Path) -> Option<PathBuf> {
    let mut components = member.components().filter(|c| *c != Component::CurDir);
    match components.next()? {
        Component::Normal(first) if first == top => {}
        _ => return None,
    }
    let mut target = dest.to_path_buf();
    for component in components {
        match component {
            Component::Normal(part) => target.push(part),
            _ => return None,
        }
    }
    Some(target)
}

/// Refuses when any existing component of `target` below `dest`'s parent is a symlink.
fn ensure_no_symlink(dest: &Path, target: &Path) -> Result<()> {
    let base = dest.parent().unwrap_or(Path::new("/"));
    let mut current = base.to_path_buf();
    for component in target.strip_prefix(base).unwrap_or(target).components() {
        current.push(component);
        if fs::symlink_metadata(&current).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::CopyRefused {
                reason: format!("{} is a symbolic link on the host", current.display()),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(data.len() as u64);
            header.set_mode(0o4755);
            if *kind == tar::EntryType::Symlink {
                header.set_link_name("/etc/shadow").unwrap();
            }
            // Write the raw name so hostile paths reach the archive unchanged.
            let name = header.as_old_mut().name.as_mut();
            name[..path.len()].copy_from_slice(path.as_bytes());
            header.set_cksum();
            builder.append(&header, *data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn extracts_files_and_dirs_without_special_bits() {
        let dir = tempfile::tempdir().unwrap();
        let tar = tar_with(&[
            ("out", tar::EntryType::Directory, b""),
            ("out/a.txt", tar::EntryType::Regular, b"hi"),
        ]);
        let dest = dir.path().join("copied");
        extract(&tar, "out", &dest).unwrap();
        assert_eq!(fs::read(dest.join("a.txt")).unwrap(), b"hi");
        let mode = fs::metadata(dest.join("a.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7000, 0);
    }

    #[test]
    fn refuses_hostile_members() {
        for (path, kind) in [
            ("out/../../escape", tar::EntryType::Regular),
            ("/etc/passwd", tar::EntryType::Regular),
            ("other/file", tar::EntryType::Regular),
            ("out/link", tar::EntryType::Symlink),
            ("out/hard", tar::EntryType::Link),
            ("out/dev", tar::EntryType::Char),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let tar = tar_with(&[(path, kind, b"x")]);
            let result = extract(&tar, "out", &dir.path().join("dest"));
            assert!(result.is_err(), "{path} ({kind:?}) accepted");
            assert!(!dir.path().join("escape").exists());
        }
    }

    #[test]
    fn never_writes_through_an_existing_host_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let dest = dir.path().join("dest");
        fs::create_dir(&dest).unwrap();
        std::os::unix::fs::symlink(&outside, dest.join("sub")).unwrap();
        let tar = tar_with(&[("out/sub/file", tar::EntryType::Regular, b"x")]);
        assert!(extract(&tar, "out", &dest).is_err());
        assert!(!outside.join("file").exists());
    }
}
