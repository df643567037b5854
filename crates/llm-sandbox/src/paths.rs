//! The rules for paths inside a sandbox, and finding programs on a search path.

use crate::error::{Error, Result};

/// Accepts an absolute, normalized path without `..`, `.` or empty components.
pub(crate) fn validate_sandbox_path(path: &str, what: &str) -> Result<()> {
    let ok = path.starts_with('/')
        && path
            .split('/')
            .skip(1)
            .all(|c| !c.is_empty() && c != "." && c != "..")
        && !path.contains('\0');
    if ok || path == "/" {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "{what} `{path}` must be an absolute path without `.`, `..` or empty parts"
        )))
    }
}

/// `path`'s parent directory and last component.
pub(crate) fn split_parent(path: &str) -> Result<(&str, &str)> {
    match path.rsplit_once('/') {
        Some((parent, name)) if !name.is_empty() => {
            Ok((if parent.is_empty() { "/" } else { parent }, name))
        }
        _ => Err(Error::invalid(format!(
            "`{path}` names no file or directory"
        ))),
    }
}

/// Finds `binary` as an executable file in one of `search_path`'s directories.
pub fn find_program<S: AsRef<str>>(search_path: &[S], binary: &str) -> Option<std::path::PathBuf> {
    search_path
        .iter()
        .map(|dir| std::path::Path::new(dir.as_ref()).join(binary))
        .find(|path| {
            path.is_file()
                && nix::unistd::access(path.as_path(), nix::unistd::AccessFlags::X_OK).is_ok()
        })
}
