//! A container's workdir: a volume of its own, backed by tmpfs and bounded to the disk limit.
//!
//! A plain `HostConfig.Tmpfs` mount would bound it too, but the engines' archive API (copies
//! in and out) cannot write into one; a volume is mounted on the engine's host, where copies
//! reach it. Sizes are given as `nr_blocks` (pages): Podman 4 reads `size` in a volume's
//! options as a quota request and refuses it. The volume carries the session's labels, is
//! removed with its container, and is collected by `gc` when its owner died. Its files count
//! against the container's memory limit, as the native backend's writable area does.
//!
//! Docker fills a new volume with the image's files by mounting it, copying and unmounting it
//! again, which leaves a tmpfs-backed volume empty; so for Docker the image's files under the
//! workdir (a committed session's state, data a Dockerfile put there) are copied in after the
//! start ([`image_files`]). Podman fills it itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveVolumeOptionsBuilder,
};
use bollard::Docker;
use futures_util::StreamExt;
use llm_sandbox_init::config::inode_limit;

use super::client::engine_error;
use super::config::{LABEL_MANAGED, LABEL_OWNER};
use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::spec::{SandboxSpec, SANDBOX_UID};

/// The mount options of a workdir of `disk_bytes`.
fn options(disk_bytes: u64) -> String {
    let pages = disk_bytes.div_ceil(4096).max(1);
    format!(
        "nr_blocks={pages},nr_inodes={},mode=0755,uid={SANDBOX_UID},gid={SANDBOX_UID},nosuid,nodev",
        inode_limit(disk_bytes)
    )
}

/// Creates the bounded workdir volume `name` when the spec asks for a disk limit (and the
/// container is not to be committed, which keeps its files in its own layer); `None` when the
/// workdir stays an unbounded anonymous volume.
pub async fn create(
    client: &Docker,
    kind: BackendKind,
    spec: &SandboxSpec,
    name: &str,
    owner: &str,
) -> Result<Option<String>> {
    let Some(disk) = spec.limits.disk.filter(|_| !spec.commit_container) else {
        return Ok(None);
    };
    let request = bollard::models::VolumeCreateOptions {
        name: Some(name.to_string()),
        driver: Some("local".into()),
        driver_opts: Some(HashMap::from([
            ("type".to_string(), "tmpfs".to_string()),
            ("device".to_string(), "tmpfs".to_string()),
            ("o".to_string(), options(disk)),
        ])),
        labels: Some(HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_OWNER.to_string(), owner.to_string()),
        ])),
        ..Default::default()
    };
    client
        .create_volume(request)
        .await
        .map_err(|e| engine_error(kind, "creating the workdir volume", e))?;
    Ok(Some(name.to_string()))
}

/// Removes volume `name`; one already gone is fine.
pub async fn remove(client: &Docker, kind: BackendKind, name: &str) -> Result<()> {
    let options = RemoveVolumeOptionsBuilder::new().force(true).build();
    match client.remove_volume(name, Some(options)).await {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        Err(e) => Err(engine_error(kind, "removing the workdir volume", e)),
    }
}

/// Removes the project's volumes that no container uses and whose owner `abandoned` says is
/// gone (or all of them); returns their names.
pub async fn gc(
    client: &Docker,
    kind: BackendKind,
    abandoned: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let filters = HashMap::from([
        ("label".to_string(), vec![format!("{LABEL_MANAGED}=true")]),
        ("dangling".to_string(), vec!["true".to_string()]),
    ]);
    let options = ListVolumesOptionsBuilder::new().filters(&filters).build();
    let listed = client
        .list_volumes(Some(options))
        .await
        .map_err(|e| engine_error(kind, "listing volumes", e))?;
    let mut removed = Vec::new();
    for volume in listed.volumes.unwrap_or_default() {
        let owner = volume.labels.get(LABEL_OWNER).cloned().unwrap_or_default();
        if abandoned(&owner) {
            remove(client, kind, &volume.name).await?;
            removed.push(volume.name);
        }
    }
    Ok(removed)
}

/// The files `image` has under `workdir`, as a tar of paths relative to it (`None` when it has
/// none), read from a container made for the purpose (created, never started) and kept for
/// the life of the process, per image id.
pub async fn image_files(
    client: &Docker,
    kind: BackendKind,
    image: &str,
    workdir: &str,
    owner: &str,
) -> Result<Option<Arc<Vec<u8>>>> {
    /// What was read: (image id, workdir, its files).
    type Known = Vec<(String, String, Option<Arc<Vec<u8>>>)>;
    static FILES: Mutex<Known> = Mutex::new(Vec::new());
    let id = client
        .inspect_image(image)
        .await
        .map_err(|e| engine_error(kind, &format!("inspecting {image}"), e))?
        .id
        .unwrap_or_else(|| image.to_string());
    let known = FILES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .iter()
        .find(|(i, w, _)| *i == id && w == workdir)
        .map(|(_, _, files)| files.clone());
    if let Some(files) = known {
        return Ok(files);
    }
    let marker = empty_marker(&id, workdir);
    if marker.as_ref().is_some_and(|marker| marker.exists()) {
        return Ok(None);
    }
    let body = bollard::models::ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["true".into()]),
        network_disabled: Some(true),
        labels: Some(HashMap::from([
            (LABEL_MANAGED.to_string(), "true".to_string()),
            (LABEL_OWNER.to_string(), owner.to_string()),
        ])),
        ..Default::default()
    };
    let created = client
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body,
        )
        .await
        .map_err(|e| engine_error(kind, "reading the image's workdir", e))?;
    let options = DownloadFromContainerOptionsBuilder::new()
        .path(workdir)
        .build();
    let mut stream = client.download_from_container(&created.id, Some(options));
    let mut tar = Vec::new();
    let mut failed = None;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => tar.extend_from_slice(&bytes),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => break, // the image has no workdir: nothing to copy
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    drop(stream);
    let removal = RemoveContainerOptionsBuilder::new().force(true).build();
    let _ = client.remove_container(&created.id, Some(removal)).await;
    if let Some(e) = failed {
        return Err(engine_error(kind, "reading the image's workdir", e));
    }
    let files = relative(&tar)?.map(Arc::new);
    if let (None, Some(marker)) = (&files, marker) {
        // Most images (the project's own among them) have nothing there: remember it across
        // processes, so that one-shot runs do not make a container for nothing each time.
        if let Some(dir) = marker.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&marker, "");
    }
    FILES
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push((id, workdir.to_string(), files.clone()));
    Ok(files)
}

/// The file whose presence says that image `id` has no files under `workdir` (image ids are
/// digests of their content, so the answer never changes); `None` without a cache directory.
fn empty_marker(id: &str, workdir: &str) -> Option<std::path::PathBuf> {
    let base = if nix::unistd::geteuid().is_root() {
        std::path::PathBuf::from("/var/cache/llm-sandbox")
    } else {
        std::env::var_os("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".cache"))
            })?
            .join("llm-sandbox")
    };
    let digest = id.rsplit(':').next().unwrap_or(id);
    let valid = !digest.is_empty() && digest.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| {
        base.join("empty-workdirs")
            .join(format!("{digest}{}", workdir.replace('/', "_")))
    })
}

/// The entries below the top directory of `tar`, with that directory taken off their paths;
/// `None` when there are none.
fn relative(tar: &[u8]) -> Result<Option<Vec<u8>>> {
    let fail = |e: std::io::Error| Error::io("repacking the image's workdir", e);
    let mut archive = tar::Archive::new(tar);
    let mut builder = tar::Builder::new(Vec::new());
    let mut any = false;
    for entry in archive.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        let path = entry.path().map_err(fail)?.into_owned();
        let mut components = path.components();
        components.next(); // the workdir itself
        let inner = components.as_path().to_path_buf();
        if inner.as_os_str().is_empty() {
            continue;
        }
        let mut header = entry.header().clone();
        if let Some(link) = entry.link_name().map_err(fail)? {
            let link = link.into_owned();
            builder
                .append_link(&mut header, &inner, link)
                .map_err(fail)?;
        } else {
            builder
                .append_data(&mut header, &inner, &mut entry)
                .map_err(fail)?;
        }
        any = true;
    }
    let repacked = builder.into_inner().map_err(fail)?;
    Ok(any.then_some(repacked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_files_lose_their_top_directory() {
        let mut builder = tar::Builder::new(Vec::new());
        let mut dir = tar::Header::new_gnu();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_size(0);
        builder
            .append_data(&mut dir, "sandbox", std::io::empty())
            .unwrap();
        let mut file = tar::Header::new_gnu();
        file.set_size(2);
        builder
            .append_data(&mut file, "sandbox/a/state.txt", &b"hi"[..])
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let repacked = relative(&tar).unwrap().unwrap();
        let mut archive = tar::Archive::new(&repacked[..]);
        let paths: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(paths, ["a/state.txt"]);
        let empty = {
            let mut builder = tar::Builder::new(Vec::new());
            builder
                .append_data(&mut dir, "sandbox", std::io::empty())
                .unwrap();
            builder.into_inner().unwrap()
        };
        assert!(relative(&empty).unwrap().is_none());
    }

    #[test]
    fn options_bound_pages_and_inodes() {
        assert_eq!(
            options(64 << 20),
            "nr_blocks=16384,nr_inodes=16384,mode=0755,uid=1000,gid=1000,nosuid,nodev"
        );
    }
}
