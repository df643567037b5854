//! File requests inside the sandbox: unpack an archive from the library, pack a path for it,
//! remove a tree. Runs in init, after `pivot_root`: every path is the sandbox's.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

/// Why a path could not be packed.
#[derive(Debug)]
pub enum PackError {
    /// The path is a symbolic link: copies never follow one.
    Link(String),
    /// The archive would exceed the bound.
    TooLarge,
    /// Reading failed.
    Io(io::Error),
}

impl From<io::Error> for PackError {
    fn from(error: io::Error) -> Self {
        if error.get_ref().is_some_and(|inner| inner.is::<Exceeded>()) {
            PackError::TooLarge
        } else {
            PackError::Io(error)
        }
    }
}

/// The marker error of [`Bounded`].
#[derive(Debug)]
struct Exceeded;

impl std::fmt::Display for Exceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the archive exceeds the copy size limit")
    }
}

impl std::error::Error for Exceeded {}

/// Packs `path` under its base name, failing beyond `max_bytes`. A path that is itself a
/// symlink is refused; links inside are stored as links (the library refuses them).
pub fn pack(path: &Path, max_bytes: u64) -> Result<Vec<u8>, PackError> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Err(PackError::Link(format!(
            "{} is a symbolic link",
            path.display()
        )));
    }
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} has no file name to copy", path.display())))?;
    let mut builder = tar::Builder::new(Bounded {
        inner: Vec::new(),
        left: max_bytes,
    });
    builder.follow_symlinks(false);
    if meta.is_dir() {
        builder.append_dir_all(name, path)?;
    } else {
        builder.append_path_with_name(path, name)?;
    }
    Ok(builder.into_inner()?.inner)
}

/// Unpacks a tar from the library into `dest_dir` (created if missing).
pub fn unpack_into(tar: &[u8], dest_dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dest_dir)?;
    let mut archive = tar::Archive::new(tar);
    archive.set_preserve_permissions(true);
    archive.set_overwrite(true);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.unpack_in(dest_dir)? {
            return Err(io::Error::other(format!(
                "refusing archive member {:?}",
                entry.path()?
            )));
        }
    }
    Ok(())
}

/// Removes `path` (a file, a link or a directory tree, never following links); missing is fine.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let removed = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match removed {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// A writer that fails once more than `left` bytes were written.
struct Bounded {
    inner: Vec<u8>,
    left: u64,
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::other(Exceeded));
        }
        self.left -= buf.len() as u64;
        self.inner.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_respects_the_size_bound_and_refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big");
        fs::write(&file, vec![7u8; 100_000]).unwrap();
        assert!(matches!(pack(&file, 10_000), Err(PackError::TooLarge)));
        assert!(pack(&file, 1 << 20).is_ok());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/etc/shadow", &link).unwrap();
        assert!(matches!(pack(&link, 1 << 20), Err(PackError::Link(_))));
    }

    #[test]
    fn unpack_and_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        fs::create_dir(&source).unwrap();
        fs::write(source.join("a.txt"), "hi").unwrap();
        let tar = pack(&source, 1 << 20).unwrap();
        let dest = dir.path().join("dest");
        unpack_into(&tar, &dest).unwrap();
        assert_eq!(fs::read(dest.join("src/a.txt")).unwrap(), b"hi");
        remove_tree(&dest).unwrap();
        assert!(!dest.exists());
        remove_tree(&dest).unwrap();
    }
}
