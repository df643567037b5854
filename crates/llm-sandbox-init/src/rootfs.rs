//! The sandbox's root filesystem: a fresh tmpfs holding read-only binds of what toolchains need,
//! a fresh /proc, a minimal /dev, and one bounded writable area shared by the workdir, /tmp and
//! /dev/shm. Nothing else of the host is visible.
//!
//! Runs in init, inside the new user and mount namespaces, before `pivot_root`.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use llm_sandbox_init::config::{inode_limit, RootfsPlan};
use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::statvfs::{statvfs, FsFlags};

/// Host paths bound read-only at the same place when they exist.
const SYSTEM_PATHS: [&str; 7] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// Entries of the host's /etc that toolchains read. Everything else of /etc stays hidden; of
/// /etc/ssl only the public part (not `private/`, which the caller's groups might open).
const ETC_ENTRIES: [&str; 17] = [
    "alternatives",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "nsswitch.conf",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "ca-certificates.conf",
    "mime.types",
    "protocols",
    "services",
    "gai.conf",
    "matplotlibrc",
    "fonts",
];

/// /etc entries kept by prefix, e.g. `java-17-openjdk` (JDK configuration) or `python3.11`.
const ETC_PREFIXES: [&str; 2] = ["java-", "python3"];

/// Device nodes bound from the host.
const DEVICES: [&str; 5] = ["null", "zero", "full", "random", "urandom"];

/// Remounts a bind read-only, without setuid bits or devices.
const READ_ONLY_REMOUNT: MsFlags = MsFlags::MS_REMOUNT
    .union(MsFlags::MS_BIND)
    .union(MsFlags::MS_RDONLY)
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV);

/// Where the new root is assembled: a tmpfs mounted over it in our private mount namespace.
const STAGING: &str = "/tmp";

/// Builds the root filesystem and pivots into it. Each error names the step that failed.
pub fn build(plan: &RootfsPlan, sandbox_id: u32) -> Result<(), String> {
    mount_or(
        None::<&str>,
        "/",
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
        "making / private",
    )?;
    let root = Path::new(STAGING);
    mount_tmpfs(root, "size=16m,mode=0755")?;

    let writable = root.join(".writable");
    make_dir(&writable, 0o755)?;
    let size = plan
        .disk_bytes
        .map(|b| format!("size={b},nr_inodes={},", inode_limit(b)))
        .unwrap_or_default();
    mount_tmpfs(&writable, &format!("{size}mode=0755"))?;
    for (dir, mode) in [("work", 0o755), ("tmp", 0o1777), ("shm", 0o1777)] {
        make_dir(&writable.join(dir), mode)?;
    }

    for path in SYSTEM_PATHS
        .iter()
        .map(PathBuf::from)
        .chain(plan.read_only_paths.iter().cloned())
    {
        bind_host_path(root, &path)?;
    }
    populate_etc(root, plan, sandbox_id)?;
    populate_dev(root, &writable, plan.unmappable_zero)?;

    let proc_dir = root.join("proc");
    make_dir(&proc_dir, 0o555)?;
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount_or(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        hardened,
        None,
        "mounting /proc",
    )?;

    let workdir = root.join(plan.workdir.trim_start_matches('/'));
    make_dirs(&workdir)?;
    bind(&writable.join("work"), &workdir)?;
    let tmp = root.join("tmp");
    make_dir(&tmp, 0o1777)?;
    bind(&writable.join("tmp"), &tmp)?;
    umount2(&writable, MntFlags::MNT_DETACH)
        .map_err(|e| format!("detaching the staging area: {e}"))?;
    fs::remove_dir(&writable).map_err(|e| format!("removing the staging area: {e}"))?;

    pivot_into(root)?;
    mount_or(
        None::<&str>,
        "/",
        None,
        READ_ONLY_REMOUNT,
        None,
        "making the root read-only",
    )?;
    std::env::set_current_dir(&plan.workdir).map_err(|e| format!("entering {}: {e}", plan.workdir))
}

fn pivot_into(root: &Path) -> Result<(), String> {
    std::env::set_current_dir(root).map_err(|e| format!("entering the new root: {e}"))?;
    // pivot_root(".", ".") stacks the old root under the new one; detaching "." then drops it.
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the host root: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("entering /: {e}"))
}

fn populate_etc(root: &Path, plan: &RootfsPlan, id: u32) -> Result<(), String> {
    let etc = root.join("etc");
    make_dir(&etc, 0o755)?;
    let mut names: Vec<String> = ETC_ENTRIES.iter().map(|s| s.to_string()).collect();
    if let Ok(entries) = fs::read_dir("/etc") {
        names.extend(
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| ETC_PREFIXES.iter().any(|p| n.starts_with(p))),
        );
    }
    if plan.host_network {
        names.extend(["resolv.conf", "hosts"].map(String::from));
    } else {
        write_file(
            &etc.join("hosts"),
            "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost sandbox\n",
        )?;
    }
    for name in names {
        bind_host_path(root, &Path::new("/etc").join(name))?;
    }
    write_file(
        &etc.join("passwd"),
        &format!(
            "root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:{id}:{id}:sandbox:{}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            plan.workdir
        ),
    )?;
    write_file(
        &etc.join("group"),
        &format!("root:x:0:\nsandbox:x:{id}:\nnogroup:x:65534:\n"),
    )?;
    write_file(&etc.join("hostname"), "sandbox\n")
}

/// Binds the devices, the /dev/fd links and /dev/shm. With `unmappable_zero`, /dev/zero is
/// the host's /dev/full, which reads as zeros too but cannot be mapped: a shared mapping of
/// /dev/zero is shared memory that no rlimit counts.
fn populate_dev(root: &Path, writable: &Path, unmappable_zero: bool) -> Result<(), String> {
    let dev = root.join("dev");
    make_dir(&dev, 0o755)?;
    mount_or(
        Some("tmpfs"),
        &dev,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("size=64k,mode=0755"),
        "mounting /dev",
    )?;
    for name in DEVICES {
        let target = dev.join(name);
        write_file(&target, "")?;
        let source = if name == "zero" && unmappable_zero {
            "full"
        } else {
            name
        };
        mount_or(
            Some(&*Path::new("/dev").join(source)),
            &target,
            None,
            MsFlags::MS_BIND,
            None,
            "binding a device",
        )?;
    }
    for (link, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(to, dev.join(link)).map_err(|e| format!("creating /dev/{link}: {e}"))?;
    }
    let shm = dev.join("shm");
    make_dir(&shm, 0o1777)?;
    bind(&writable.join("shm"), &shm)
}

/// Makes host `path` visible read-only at the same place under `root`; absent paths are skipped.
fn bind_host_path(root: &Path, path: &Path) -> Result<(), String> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    let target = root.join(path.strip_prefix("/").unwrap_or(path));
    if let Some(parent) = target.parent() {
        make_dirs(parent)?;
    }
    if meta.file_type().is_symlink() {
        let link =
            fs::read_link(path).map_err(|e| format!("reading link {}: {e}", path.display()))?;
        return symlink(&link, &target).map_err(|e| format!("linking {}: {e}", target.display()));
    }
    if meta.is_dir() {
        make_dir(&target, 0o755)?;
    } else {
        write_file(&target, "")?;
    }
    bind(path, &target)?;
    // The new mount must keep the flags the host locked on the source, or the kernel refuses.
    let locked = statvfs(path)
        .map(|s| locked_flags(s.flags()))
        .unwrap_or(MsFlags::empty());
    mount_or(
        None::<&str>,
        &target,
        None,
        READ_ONLY_REMOUNT | locked,
        None,
        "making a bind read-only",
    )
}

fn locked_flags(flags: FsFlags) -> MsFlags {
    [
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (FsFlags::ST_RELATIME, MsFlags::MS_RELATIME),
    ]
    .into_iter()
    .filter(|(st, _)| flags.contains(*st))
    .fold(MsFlags::empty(), |all, (_, ms)| all | ms)
}

/// Binds `source` onto `target`, recursively only when the kernel insists (locked submounts).
fn bind(source: &Path, target: &Path) -> Result<(), String> {
    match mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    ) {
        Err(Errno::EINVAL) => mount_or(
            Some(source),
            target,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
            "binding",
        ),
        other => {
            other.map_err(|e| format!("binding {} to {}: {e}", source.display(), target.display()))
        }
    }
}

fn mount_tmpfs(target: &Path, options: &str) -> Result<(), String> {
    mount_or(
        Some("tmpfs"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(options),
        "mounting tmpfs",
    )
}

fn mount_or<P: AsRef<Path> + ?Sized>(
    source: Option<&P>,
    target: impl AsRef<Path>,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
    what: &str,
) -> Result<(), String> {
    let target = target.as_ref();
    mount(source.map(|s| s.as_ref()), target, fstype, flags, data)
        .map_err(|e| format!("{what} at {}: {e}", target.display()))
}

fn make_dir(path: &Path, mode: u32) -> Result<(), String> {
    match fs::create_dir(path) {
        Ok(()) => fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| format!("setting mode of {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(format!("creating {}: {e}", path.display())),
    }
}

fn make_dirs(path: &Path) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("creating {}: {e}", path.display()))
}

fn write_file(path: &Path, contents: &str) -> Result<(), String> {
    fs::write(path, contents).map_err(|e| format!("writing {}: {e}", path.display()))
}
