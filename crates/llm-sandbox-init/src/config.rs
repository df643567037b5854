//! The sandbox the library asks the keeper and init to build.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything init needs, sent by the library as the first request ([`crate::protocol::Request::Configure`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitConfig {
    /// The uid and gid the code runs as inside the sandbox.
    pub sandbox_id: u32,
    /// Who owns the sandbox's user namespace on the host.
    pub owner: Owner,
    /// Whether the sandbox gets its own network namespace (loopback only).
    pub own_network: bool,
    /// The root filesystem to build.
    pub rootfs: RootfsPlan,
    /// rlimits applied to everything in the sandbox (memory and processes too when cgroups are
    /// unavailable).
    pub rlimits: Vec<(Rlimit, u64)>,
    /// Set when only rlimits bound memory: shared memory that `RLIMIT_DATA` does not count
    /// (System V segments, memfd, shared anonymous and /dev/zero mappings) is refused; files in
    /// /dev/shm count against the disk limit.
    pub refuse_uncounted_memory: bool,
}

/// The host user that owns the sandbox's user namespace (and is charged for what the kernel
/// counts per user: inotify instances, pending signals, message queues, namespaces).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Owner {
    /// The caller itself (an ordinary user): the sandbox's id maps to the caller's uid and gid.
    Caller,
    /// A dedicated unprivileged id, used by root callers: the keeper becomes this uid and gid
    /// before creating the user namespace, and the sandbox's id maps to it.
    Dedicated(u32),
}

/// A resource limit, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rlimit {
    /// Private writable memory per process (`RLIMIT_DATA`).
    Data,
    /// Processes of the sandbox user (`RLIMIT_NPROC`).
    Processes,
    /// Core file size (`RLIMIT_CORE`).
    Core,
    /// The size of any one file (`RLIMIT_FSIZE`).
    FileSize,
}

/// What the root filesystem holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RootfsPlan {
    /// The writable working directory (absolute).
    pub workdir: String,
    /// The size of the writable area in bytes, `None` for tmpfs's default (half of RAM).
    pub disk_bytes: Option<u64>,
    /// Extra host paths bound read-only.
    pub read_only_paths: Vec<PathBuf>,
    /// Whether the host's network is shared (then its resolv.conf and hosts are visible).
    pub host_network: bool,
    /// Whether /dev/zero must not be mappable (only rlimits bound memory; see the rootfs).
    pub unmappable_zero: bool,
}

/// The number of inodes of a writable area of `disk_bytes`: one per 4 KiB page (every non-empty
/// file takes a page anyway), at least 4096. Without it tmpfs allows millions of empty files
/// whatever its size, each holding kernel memory outside the size limit (and, without cgroups,
/// outside every limit).
pub fn inode_limit(disk_bytes: u64) -> u64 {
    (disk_bytes / 4096).max(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inodes_are_bounded_by_the_disk_size() {
        assert_eq!(inode_limit(64 << 20), 16384);
        assert_eq!(inode_limit(1 << 30), 262_144);
        assert_eq!(inode_limit(1 << 20), 4096);
    }
}
