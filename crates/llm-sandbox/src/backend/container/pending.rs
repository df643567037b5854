//! File changes a container session defers to its next command.
//!
//! Every engine request costs a round trip, and a run used to cost three: upload the code, run
//! it, remove it. Small uploads of plain files and removals are instead queued here and carried
//! out by the next command's wrapper (as the sandbox user, in order, before the command), so a
//! run is one exec, like `docker exec`. Anything else is sent at once, after the queue.

use std::path::Component;

/// The most content deferred; bigger uploads go through the engine's archive API.
const MAX_DEFERRED_BYTES: usize = 64 * 1024;

/// One deferred change.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    Remove(String),
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        content: String,
    },
}

/// The queue of deferred changes.
#[derive(Debug, Default)]
pub struct Pending {
    changes: Vec<Change>,
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Queues the removal of `path` (a missing path is fine; a failure is silent).
    pub fn remove(&mut self, path: &str) {
        self.changes.push(Change::Remove(path.to_string()));
    }

    /// Queues unpacking `tar` into `dest_dir` when it holds only directories and small text
    /// files with plain relative names; returns false (queuing nothing) otherwise.
    pub fn defer_unpack(&mut self, dest_dir: &str, tar: &[u8]) -> bool {
        let mut changes = Vec::new();
        let mut bytes = 0;
        let mut archive = tar::Archive::new(tar);
        let Ok(entries) = archive.entries() else {
            return false;
        };
        for entry in entries {
            let Ok(mut entry) = entry else {
                return false;
            };
            let Ok(name) = entry.path().map(|p| p.into_owned()) else {
                return false;
            };
            let plain = name.components().all(|c| matches!(c, Component::Normal(_)));
            let Some(name) = name.to_str().filter(|_| plain) else {
                return false;
            };
            let path = format!("{}/{name}", dest_dir.trim_end_matches('/'));
            let mode = entry.header().mode().unwrap_or(0o644) & 0o777;
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                changes.push(Change::Dir { path, mode });
            } else if kind.is_file() {
                let mut content = String::new();
                let readable = std::io::Read::read_to_string(&mut entry, &mut content).is_ok();
                bytes += content.len();
                if !readable || content.contains('\0') || bytes > MAX_DEFERRED_BYTES {
                    return false;
                }
                changes.push(Change::File {
                    path,
                    mode,
                    content,
                });
            } else {
                return false;
            }
        }
        self.changes.extend(changes);
        true
    }

    /// Empties the queue into the wrapper's arguments: the number of changes, then four per
    /// change (kind `r`, `d` or `f`; path; octal mode; content), which the run wrapper applies.
    pub fn take_args(&mut self) -> (Vec<String>, Pending) {
        let taken = Pending {
            changes: std::mem::take(&mut self.changes),
        };
        let mut args = vec![taken.changes.len().to_string()];
        for change in &taken.changes {
            let (kind, path, mode, content) = match change {
                Change::Remove(path) => ("r", path.as_str(), String::new(), ""),
                Change::Dir { path, mode } => ("d", path.as_str(), format!("{mode:o}"), ""),
                Change::File {
                    path,
                    mode,
                    content,
                } => ("f", path.as_str(), format!("{mode:o}"), content.as_str()),
            };
            args.extend([kind.into(), path.into(), mode, content.into()]);
        }
        (args, taken)
    }

    /// Puts changes taken with [`take_args`](Self::take_args) back (their command never ran).
    pub fn restore(&mut self, taken: Pending) {
        let later = std::mem::replace(&mut self.changes, taken.changes);
        self.changes.extend(later);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::archive::Packer;

    #[test]
    fn small_plain_archives_are_deferred_in_order() {
        let mut packer = Packer::new();
        packer.dir(".llm-sandbox").unwrap();
        packer.dir(".llm-sandbox/run-1").unwrap();
        packer
            .file(".llm-sandbox/run-1/main.py", b"print('hi')\n", 0o644)
            .unwrap();
        let mut pending = Pending::default();
        pending.remove("/sandbox/.llm-sandbox/run-0");
        assert!(pending.defer_unpack("/sandbox/", &packer.finish().unwrap()));
        let (args, _) = pending.take_args();
        assert!(pending.is_empty());
        assert_eq!(
            args,
            [
                "4",
                "r",
                "/sandbox/.llm-sandbox/run-0",
                "",
                "",
                "d",
                "/sandbox/.llm-sandbox",
                "755",
                "",
                "d",
                "/sandbox/.llm-sandbox/run-1",
                "755",
                "",
                "f",
                "/sandbox/.llm-sandbox/run-1/main.py",
                "644",
                "print('hi')\n",
            ]
        );
    }

    #[test]
    fn binary_big_or_linked_content_is_not_deferred() {
        let mut pending = Pending::default();
        for content in [
            &b"\0binary"[..],
            &vec![b'a'; MAX_DEFERRED_BYTES + 1],
            b"\xff",
        ] {
            let mut packer = Packer::new();
            packer.file("f", content, 0o644).unwrap();
            assert!(!pending.defer_unpack("/sandbox", &packer.finish().unwrap()));
        }
        let mut builder = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder
            .append_link(&mut header, "link", "/etc/passwd")
            .unwrap();
        assert!(!pending.defer_unpack("/sandbox", &builder.into_inner().unwrap()));
        assert!(pending.is_empty());
    }

    #[test]
    fn restored_changes_come_before_later_ones() {
        let mut pending = Pending::default();
        pending.remove("/a");
        let (_, taken) = pending.take_args();
        pending.remove("/b");
        pending.restore(taken);
        assert_eq!(
            pending.take_args().0,
            ["2", "r", "/a", "", "", "r", "/b", "", ""]
        );
    }
}
