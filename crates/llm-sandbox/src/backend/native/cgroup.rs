//! Resource limits through cgroups, v2 or v1 (including hybrid hosts), behind one type.
//!
//! A session gets its own cgroup under the caller's own (so the caller's limits still apply).
//! Where the caller may not create cgroups (non-root without delegation), [`Cgroup::create`]
//! says why and the backend falls back to rlimits.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::spec::ResourceLimits;

/// Which cgroup hierarchy holds a session's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// The unified hierarchy.
    V2,
    /// Per-controller hierarchies (also on hybrid hosts).
    V1,
}

/// A session's cgroup: one directory (v2) or one per controller (v1).
#[derive(Debug)]
pub struct Cgroup {
    version: CgroupVersion,
    dirs: Vec<PathBuf>,
}

const CONTROLLERS: [&str; 3] = ["memory", "pids", "cpu"];
const CFS_PERIOD_US: u64 = 100_000;

impl Cgroup {
    /// Creates a cgroup named `name` with `limits`; the error says why none could be made.
    pub fn create(name: &str, limits: &ResourceLimits) -> Result<Cgroup, String> {
        let hierarchy = Hierarchy::detect()?;
        static STALE_REMOVED: std::sync::Once = std::sync::Once::new();
        STALE_REMOVED.call_once(|| {
            hierarchy.parents().iter().for_each(|p| {
                remove_stale(p);
            })
        });
        let cgroup = match hierarchy {
            Hierarchy::V2 { own } => {
                let dir = own.join(name);
                enable_v2_controllers(&own)?;
                mkdir(&dir)?;
                Cgroup {
                    version: CgroupVersion::V2,
                    dirs: vec![dir],
                }
            }
            Hierarchy::V1 { own } => {
                let mut cgroup = Cgroup {
                    version: CgroupVersion::V1,
                    dirs: Vec::new(),
                };
                for dir in own.iter().map(|d| d.join(name)) {
                    mkdir(&dir)?; // on failure, Drop removes the ones made so far
                    cgroup.dirs.push(dir);
                }
                cgroup
            }
        };
        cgroup.apply(limits)?;
        Ok(cgroup)
    }

    /// The hierarchy in use.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    fn apply(&self, limits: &ResourceLimits) -> Result<(), String> {
        let write = |controller: &str, file: &str, value: String| -> Result<(), String> {
            let dir = self.dir_for(controller);
            let path = dir.join(file);
            fs::write(&path, &value)
                .map_err(|e| format!("writing {value} to {}: {e}", path.display()))
        };
        if let Some(bytes) = limits.memory {
            match self.version {
                CgroupVersion::V2 => {
                    write("memory", "memory.max", bytes.to_string())?;
                    // No swap: the memory limit is the whole limit. Absent without swap accounting.
                    let _ = write("memory", "memory.swap.max", "0".into());
                }
                CgroupVersion::V1 => {
                    write("memory", "memory.limit_in_bytes", bytes.to_string())?;
                    let _ = write("memory", "memory.memsw.limit_in_bytes", bytes.to_string());
                }
            }
        }
        if let Some(pids) = limits.pids {
            write("pids", "pids.max", pids.to_string())?;
        }
        if let Some(cpus) = limits.cpus {
            let quota = ((cpus * CFS_PERIOD_US as f64) as u64).max(1000);
            match self.version {
                CgroupVersion::V2 => write("cpu", "cpu.max", format!("{quota} {CFS_PERIOD_US}"))?,
                CgroupVersion::V1 => {
                    write("cpu", "cpu.cfs_period_us", CFS_PERIOD_US.to_string())?;
                    write("cpu", "cpu.cfs_quota_us", quota.to_string())?;
                }
            }
        }
        Ok(())
    }

    fn dir_for(&self, controller: &str) -> &Path {
        match self.version {
            CgroupVersion::V2 => &self.dirs[0],
            CgroupVersion::V1 => {
                let index = CONTROLLERS
                    .iter()
                    .position(|c| *c == controller)
                    .unwrap_or(0);
                &self.dirs[index]
            }
        }
    }

    /// Moves process `pid` (and so its future children) into the cgroup.
    pub fn attach(&self, pid: i32) -> Result<(), String> {
        for dir in &self.dirs {
            let procs = dir.join("cgroup.procs");
            fs::write(&procs, pid.to_string())
                .map_err(|e| format!("adding pid {pid} to {}: {e}", procs.display()))?;
        }
        Ok(())
    }

    /// How many processes of this cgroup the kernel's OOM killer has killed.
    pub fn oom_kills(&self) -> u64 {
        let (file, key) = match self.version {
            CgroupVersion::V2 => ("memory.events", "oom_kill"),
            CgroupVersion::V1 => ("memory.oom_control", "oom_kill"),
        };
        fs::read_to_string(self.dir_for("memory").join(file))
            .ok()
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key)?.trim().parse::<u64>().ok())
            })
            .unwrap_or(0)
    }

    /// Removes the cgroup, waiting briefly for its dying processes to leave.
    fn remove(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for dir in self.dirs.drain(..).rev() {
            loop {
                match fs::remove_dir(&dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if Instant::now() >= deadline => {
                        tracing::warn!("could not remove cgroup {}: {e}", dir.display());
                        break;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The prefix of every session cgroup's name, followed by the owning process's pid.
pub const NAME_PREFIX: &str = "llm-sandbox-";

/// Removes the session cgroups that crashed callers left behind; returns them.
pub fn remove_stale_cgroups() -> Result<Vec<PathBuf>, String> {
    Ok(Hierarchy::detect()?
        .parents()
        .iter()
        .flat_map(|p| remove_stale(p))
        .collect())
}

/// Removes the empty session cgroups under `parent` whose owning process is gone (it crashed
/// before it could remove them). Cgroups that still hold processes are left alone.
fn remove_stale(parent: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir(parent) else {
        return removed;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(NAME_PREFIX)?.split('-').next())
        else {
            continue;
        };
        let owner_gone = owner.parse::<u32>().is_ok() && !Path::new("/proc").join(owner).exists();
        if owner_gone && fs::remove_dir(entry.path()).is_ok() {
            tracing::debug!("removed stale cgroup {}", entry.path().display());
            removed.push(entry.path());
        }
    }
    removed
}

fn mkdir(dir: &Path) -> Result<(), String> {
    fs::create_dir(dir).map_err(|e| format!("creating cgroup {}: {e}", dir.display()))
}

/// Where this process sits in the cgroup hierarchies that can hold our controllers.
enum Hierarchy {
    V2 { own: PathBuf },
    V1 { own: Vec<PathBuf> },
}

impl Hierarchy {
    /// The directories session cgroups are created in.
    fn parents(&self) -> Vec<PathBuf> {
        match self {
            Hierarchy::V2 { own } => vec![own.clone()],
            Hierarchy::V1 { own } => own.clone(),
        }
    }

    fn detect() -> Result<Hierarchy, String> {
        let membership = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("reading /proc/self/cgroup: {e}"))?;
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
        let mounts = CgroupMount::parse_all(&mountinfo);

        // v2, when the unified hierarchy offers every controller we need.
        if let (Some(mount), Some(path)) = (
            mounts.iter().find(|m| m.version == CgroupVersion::V2),
            membership.lines().find_map(|l| l.strip_prefix("0::")),
        ) {
            let own = mount.point.join(path.trim_start_matches('/'));
            let available =
                fs::read_to_string(mount.point.join("cgroup.controllers")).unwrap_or_default();
            if CONTROLLERS
                .iter()
                .all(|c| available.split_whitespace().any(|a| a == *c))
            {
                return Ok(Hierarchy::V2 { own });
            }
        }

        // v1: each controller in its own (possibly co-mounted) hierarchy.
        let mut own = Vec::new();
        for controller in CONTROLLERS {
            let mount = mounts
                .iter()
                .find(|m| {
                    m.version == CgroupVersion::V1 && m.controllers.iter().any(|c| c == controller)
                })
                .ok_or_else(|| format!("no cgroup hierarchy has the {controller} controller"))?;
            let path = membership
                .lines()
                .find_map(|line| {
                    let mut fields = line.splitn(3, ':');
                    let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
                    controllers
                        .split(',')
                        .any(|c| c == controller)
                        .then_some(path)
                })
                .ok_or_else(|| format!("this process is in no {controller} cgroup"))?;
            own.push(mount.point.join(path.trim_start_matches('/')));
        }
        Ok(Hierarchy::V1 { own })
    }
}

fn enable_v2_controllers(own: &Path) -> Result<(), String> {
    let control = own.join("cgroup.subtree_control");
    let enabled = fs::read_to_string(&control).unwrap_or_default();
    let missing: Vec<String> = CONTROLLERS
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    fs::write(&control, missing.join(" ")).map_err(|e| {
        format!(
            "enabling {} in {}: {e} (delegate a cgroup subtree without processes to this user, e.g. run under `systemd-run --user --scope -p Delegate=yes`)",
            missing.join(" "),
            control.display()
        )
    })
}

/// One cgroup filesystem mount from /proc/self/mountinfo.
struct CgroupMount {
    point: PathBuf,
    version: CgroupVersion,
    controllers: Vec<String>,
}

impl CgroupMount {
    fn parse_all(mountinfo: &str) -> Vec<CgroupMount> {
        mountinfo.lines().filter_map(Self::parse).collect()
    }

    /// Parses `id parent maj:min root point opts [optional...] - fstype source superopts`.
    fn parse(line: &str) -> Option<CgroupMount> {
        let (left, right) = line.split_once(" - ")?;
        let point = PathBuf::from(left.split(' ').nth(4)?);
        let mut right = right.split(' ');
        let fstype = right.next()?;
        let super_options = right.nth(1).unwrap_or("");
        let version = match fstype {
            "cgroup2" => CgroupVersion::V2,
            "cgroup" => CgroupVersion::V1,
            _ => return None,
        };
        let controllers = super_options
            .split(',')
            .filter(|o| CONTROLLERS.contains(o))
            .map(String::from)
            .collect();
        Some(CgroupMount {
            point,
            version,
            controllers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v1_and_v2_mounts() {
        let info = "\
30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct
31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid shared:9 - cgroup cgroup rw,memory
32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
33 25 0:29 / /tmp rw - tmpfs tmpfs rw";
        let mounts = CgroupMount::parse_all(info);
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].controllers, ["cpu"]);
        assert_eq!(mounts[1].point, Path::new("/sys/fs/cgroup/memory"));
        assert_eq!(mounts[2].version, CgroupVersion::V2);
    }
}
