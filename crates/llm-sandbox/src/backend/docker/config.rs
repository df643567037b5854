//! The container's create body: secure defaults, then the user's `runtime_config` on top.
//!
//! `runtime_config` is a JSON object in Engine API terms (`{"HostConfig": {"Memory": …}}`) or in
//! the docker-py names the original's users know (`{"mem_limit": "512m"}`), mapped below.
//! Unknown keys are an error, never silently ignored.

use bollard::models::ContainerCreateBody;
use llm_sandbox_init::config::inode_limit;
use serde_json::{json, Map, Value};

use crate::backend::BackendKind;
use crate::error::{Error, Result};
use crate::spec::{parse_size, NetworkMode, SandboxSpec};

/// The uid:gid sandboxed code runs as (the images' `sandbox` user).
pub const CODE_USER: &str = "1000:1000";
/// The uid:gid of the container's init and keep-alive process: neither root nor the code's
/// user, so that the code can neither signal it nor be mistaken for it.
pub const KEEPER_USER: &str = "65534:65534";
/// Labels that mark a container as ours (for `gc`).
pub const LABEL_MANAGED: &str = "org.llm-sandbox.managed";
/// The host and pid of the process that created the container.
pub const LABEL_OWNER: &str = "org.llm-sandbox.owner";

/// The engine's default network, attached only while an allowed install runs.
pub fn install_network(kind: BackendKind) -> &'static str {
    match kind {
        BackendKind::Podman => "podman",
        _ => "bridge",
    }
}

/// docker-py names and where they go in the create body.
const DOCKER_PY_NAMES: [(&str, Place, &str); 30] = [
    ("mem_limit", Place::Host, "Memory"),
    ("memswap_limit", Place::Host, "MemorySwap"),
    ("mem_reservation", Place::Host, "MemoryReservation"),
    ("shm_size", Place::Host, "ShmSize"),
    ("cpu_quota", Place::Host, "CpuQuota"),
    ("cpu_period", Place::Host, "CpuPeriod"),
    ("cpu_shares", Place::Host, "CpuShares"),
    ("nano_cpus", Place::Host, "NanoCpus"),
    ("cpuset_cpus", Place::Host, "CpusetCpus"),
    ("pids_limit", Place::Host, "PidsLimit"),
    ("volumes", Place::Host, "Binds"),
    ("cap_add", Place::Host, "CapAdd"),
    ("cap_drop", Place::Host, "CapDrop"),
    ("security_opt", Place::Host, "SecurityOpt"),
    ("network_mode", Place::Host, "NetworkMode"),
    ("ports", Place::Host, "PortBindings"),
    ("dns", Place::Host, "Dns"),
    ("extra_hosts", Place::Host, "ExtraHosts"),
    ("privileged", Place::Host, "Privileged"),
    ("read_only", Place::Host, "ReadonlyRootfs"),
    ("tmpfs", Place::Host, "Tmpfs"),
    ("ulimits", Place::Host, "Ulimits"),
    ("runtime", Place::Host, "Runtime"),
    ("sysctls", Place::Host, "Sysctls"),
    ("group_add", Place::Host, "GroupAdd"),
    ("environment", Place::Config, "Env"),
    ("user", Place::Config, "User"),
    ("working_dir", Place::Config, "WorkingDir"),
    ("labels", Place::Config, "Labels"),
    ("hostname", Place::Config, "Hostname"),
];

#[derive(Clone, Copy)]
enum Place {
    Config,
    Host,
}

/// Where a session container goes, beyond its spec.
#[derive(Debug, Clone, Copy, Default)]
pub struct Placement<'a> {
    /// The session's owner, for the labels.
    pub owner: &'a str,
    /// The bounded workdir volume, when there is one (see `workdir`).
    pub workdir_volume: Option<&'a str>,
    /// The network the container starts on, to be detached before code runs and attached
    /// only while an installer does (when installs may go online that way).
    pub install_network: Option<&'a str>,
}

/// The create body for a session container of `image`.
pub fn create_body(
    kind: BackendKind,
    spec: &SandboxSpec,
    image: &str,
    plan: &Placement,
) -> Result<ContainerCreateBody> {
    let mut body = defaults(kind, spec, image, plan);
    if let Some(config) = &spec.runtime_config {
        let Value::Object(config) = config else {
            return Err(Error::invalid("runtime_config must be a JSON object"));
        };
        merge_user_config(&mut body, config)?;
    }
    parse_checked(body)
}

fn defaults(kind: BackendKind, spec: &SandboxSpec, image: &str, plan: &Placement) -> Value {
    let limits = &spec.limits;
    let network = match &spec.network {
        // Installs that go online through the engine's default network attach it for their
        // duration only; the container starts attached to it and is detached before code runs.
        NetworkMode::None => plan.install_network.unwrap_or("none").to_string(),
        NetworkMode::Host => "host".to_string(),
        NetworkMode::Other(mode) => mode.clone(),
    };
    // Docker bounds the inodes too (one per 4 KiB page): otherwise millions of empty files fill
    // the container's memory with tmpfs inodes that nothing can reclaim, and every process of
    // the session is OOM-killed from then on. (Podman 4 refuses the nr_inodes option.)
    let tmp_size = limits
        .disk
        .map(|b| match kind {
            BackendKind::Podman => format!(",size={b}"),
            _ => format!(",size={b},nr_inodes={}", inode_limit(b)),
        })
        .unwrap_or_default();
    let mut host = json!({
        "NetworkMode": network,
        "CapDrop": ["ALL"],
        "SecurityOpt": ["no-new-privileges"],
        // A committed container must keep its files in its own layer: no read-only root then.
        "ReadonlyRootfs": !spec.commit_container,
        "Tmpfs": { "/tmp": format!("rw,nosuid,nodev,mode=1777{tmp_size}") },
        "Init": true,
    });
    if let Some(bytes) = limits.memory {
        host["Memory"] = json!(bytes);
        host["MemorySwap"] = json!(bytes); // no swap beyond the memory limit
    }
    if let Some(pids) = limits.pids {
        host["PidsLimit"] = json!(pids);
    }
    if let Some(cpus) = limits.cpus {
        host["NanoCpus"] = json!((cpus * 1e9) as i64);
    }
    if kind == BackendKind::Podman {
        // Podman's default ulimits exceed some hosts' hard limits ("error setting rlimit"):
        // ask for no more than this process may have itself.
        let nofile = capped(nix::sys::resource::Resource::RLIMIT_NOFILE, 1024);
        let nproc = capped(nix::sys::resource::Resource::RLIMIT_NPROC, 4096);
        host["Ulimits"] = json!([
            { "Name": "nofile", "Soft": nofile, "Hard": nofile },
            { "Name": "nproc", "Soft": nproc, "Hard": nproc },
        ]);
    }
    // The workdir: the session's bounded volume, else an anonymous one (unbounded), else (a
    // committed container) the container's own layer.
    let volumes = match plan.workdir_volume {
        Some(volume) => {
            host["Mounts"] =
                json!([{ "Type": "volume", "Source": volume, "Target": spec.workdir }]);
            json!({})
        }
        None if spec.commit_container => json!({}),
        None => json!({ spec.workdir.clone(): {} }),
    };
    json!({
        "Image": image,
        "Cmd": ["sleep", "infinity"],
        "User": KEEPER_USER,
        "WorkingDir": spec.workdir,
        "Env": ["LANG=C.UTF-8"],
        "Volumes": volumes,
        "Labels": { LABEL_MANAGED: "true", LABEL_OWNER: plan.owner },
        "HostConfig": host,
    })
}

/// `wanted`, or less when this process's own hard limit is lower.
fn capped(resource: nix::sys::resource::Resource, wanted: u64) -> u64 {
    nix::sys::resource::getrlimit(resource).map_or(wanted, |(_, hard)| hard.min(wanted))
}

/// Merges the user's configuration over the defaults: Engine API names as they are, docker-py
/// names mapped; nested objects (HostConfig, Labels) merged key by key.
fn merge_user_config(body: &mut Value, config: &Map<String, Value>) -> Result<()> {
    for (key, value) in config {
        if let Some((_, place, engine_name)) = DOCKER_PY_NAMES.iter().find(|(name, ..)| name == key)
        {
            let value = convert(key, value)?;
            let target = match place {
                Place::Config => &mut *body,
                Place::Host => &mut body["HostConfig"],
            };
            merge(target, engine_name, value);
            if *key == "ports" {
                let exposed: Map<String, Value> = config[key]
                    .as_object()
                    .map(|ports| ports.keys().map(|p| (port_key(p), json!({}))).collect())
                    .unwrap_or_default();
                merge(body, "ExposedPorts", Value::Object(exposed));
            }
        } else if key.chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
            merge(body, key, value.clone());
        } else {
            return Err(unknown_key(key));
        }
    }
    Ok(())
}

fn merge(target: &mut Value, key: &str, value: Value) {
    merge_value(&mut target[key], value);
}

/// Objects merge key by key; anything else replaces what was there.
fn merge_value(existing: &mut Value, update: Value) {
    match (existing, update) {
        (Value::Object(existing), Value::Object(update)) => {
            for (key, value) in update {
                merge_value(existing.entry(key).or_insert(Value::Null), value);
            }
        }
        (existing, update) => *existing = update,
    }
}

/// Converts a docker-py value to its Engine API form.
fn convert(key: &str, value: &Value) -> Result<Value> {
    let bad = |what: &str| Error::invalid(format!("runtime_config `{key}`: {what}"));
    Ok(match key {
        "mem_limit" | "memswap_limit" | "mem_reservation" | "shm_size" => match value {
            Value::String(size) => json!(parse_size(size)?),
            Value::Number(_) => value.clone(),
            _ => return Err(bad("expected a size such as \"512m\" or a number of bytes")),
        },
        "environment" => match value {
            Value::Object(vars) => json!(vars
                .iter()
                .map(|(k, v)| format!(
                    "{k}={}",
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string())
                ))
                .collect::<Vec<_>>()),
            Value::Array(_) => value.clone(),
            _ => return Err(bad("expected an object or a list of KEY=VALUE")),
        },
        "volumes" => match value {
            Value::Object(volumes) => {
                let mut binds = Vec::new();
                for (host, bind) in volumes {
                    let target = bind
                        .get("bind")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad("each volume needs a `bind` path"))?;
                    let mode = bind.get("mode").and_then(Value::as_str).unwrap_or("rw");
                    binds.push(format!("{host}:{target}:{mode}"));
                }
                json!(binds)
            }
            Value::Array(_) => value.clone(),
            _ => {
                return Err(bad(
                    "expected {host: {bind, mode}} or a list of host:container[:mode]",
                ))
            }
        },
        "ports" => {
            let ports = value
                .as_object()
                .ok_or_else(|| bad("expected {\"8080/tcp\": host_port}"))?;
            let bindings: Map<String, Value> = ports
                .iter()
                .map(|(port, host)| {
                    let host_port = host
                        .as_u64()
                        .map(|p| p.to_string())
                        .or_else(|| host.as_str().map(String::from))
                        .unwrap_or_default();
                    (port_key(port), json!([{ "HostPort": host_port }]))
                })
                .collect();
            Value::Object(bindings)
        }
        "extra_hosts" => match value {
            Value::Object(hosts) => json!(hosts
                .iter()
                .map(|(name, ip)| format!("{name}:{}", ip.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()),
            _ => value.clone(),
        },
        "ulimits" => {
            let list = value
                .as_array()
                .ok_or_else(|| bad("expected a list of {name, soft, hard}"))?;
            json!(list
                .iter()
                .map(|u| json!({ "Name": u.get("name").or(u.get("Name")), "Soft": u.get("soft").or(u.get("Soft")), "Hard": u.get("hard").or(u.get("Hard")) }))
                .collect::<Vec<_>>())
        }
        _ => value.clone(),
    })
}

fn port_key(port: &str) -> String {
    if port.contains('/') {
        port.to_string()
    } else {
        format!("{port}/tcp")
    }
}

fn unknown_key(key: &str) -> Error {
    let known: Vec<&str> = DOCKER_PY_NAMES.iter().map(|(name, ..)| *name).collect();
    Error::invalid(format!(
        "runtime_config key `{key}` is unknown; use Engine API names (e.g. \"HostConfig\": {{\"Memory\": 1}}) or one of: {}",
        known.join(", ")
    ))
}

/// Parses the merged body, refusing keys the Engine API does not have (serde would drop them).
fn parse_checked(body: Value) -> Result<ContainerCreateBody> {
    let parsed: ContainerCreateBody = serde_json::from_value(body.clone())
        .map_err(|e| Error::invalid(format!("runtime_config does not fit the Engine API: {e}")))?;
    let reparsed = serde_json::to_value(&parsed).expect("create bodies serialize");
    if let Some(path) = dropped_key(&body, &reparsed, "") {
        return Err(Error::invalid(format!(
            "runtime_config key `{path}` is not part of the Engine API's container create body"
        )));
    }
    Ok(parsed)
}

/// The first key of `original` that `kept` lost, as a dotted path.
fn dropped_key(original: &Value, kept: &Value, prefix: &str) -> Option<String> {
    let (Value::Object(original), Value::Object(kept)) = (original, kept) else {
        return None;
    };
    for (key, value) in original {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match kept.get(key) {
            None if !value.is_null() => return Some(path),
            Some(inner)
                if key != "Labels"
                    && key != "Tmpfs"
                    && key != "Volumes"
                    && key != "ExposedPorts"
                    && key != "PortBindings"
                    && key != "Sysctls"
                    && key != "StorageOpt" =>
            {
                if let Some(found) = dropped_key(value, inner, &path) {
                    return Some(found);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_with(config: Value) -> Result<ContainerCreateBody> {
        let spec = SandboxSpec {
            runtime_config: Some(config),
            ..Default::default()
        };
        create_body(BackendKind::Docker, &spec, "img", &Placement::default())
    }

    #[test]
    fn the_code_user_is_the_sandbox_user() {
        let id = crate::spec::SANDBOX_UID;
        assert_eq!(CODE_USER, format!("{id}:{id}"));
    }

    #[test]
    fn defaults_are_locked_down() {
        let body = create_body(
            BackendKind::Docker,
            &SandboxSpec::default(),
            "img",
            &Placement {
                owner: "host:1",
                workdir_volume: Some("vol"),
                install_network: None,
            },
        )
        .unwrap();
        let host = body.host_config.unwrap();
        let mounts = host.mounts.clone().unwrap();
        assert_eq!(mounts[0].source.as_deref(), Some("vol"));
        assert_eq!(mounts[0].target.as_deref(), Some("/sandbox"));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.memory, Some(1 << 30));
        assert_eq!(host.pids_limit, Some(256));
        assert_eq!(body.user.as_deref(), Some(KEEPER_USER));
        assert!(host.ulimits.is_none(), "docker keeps the engine's ulimits");
        let podman = create_body(
            BackendKind::Podman,
            &SandboxSpec::default(),
            "img",
            &Placement::default(),
        )
        .unwrap();
        assert_eq!(podman.host_config.unwrap().ulimits.unwrap().len(), 2);
    }

    #[test]
    fn docker_py_names_map_to_the_engine_api() {
        let body = body_with(json!({
            "mem_limit": "512m",
            "environment": {"A": "1"},
            "volumes": {"/data": {"bind": "/mnt", "mode": "ro"}},
            "ports": {"8080": 18080},
            "cap_add": ["NET_BIND_SERVICE"],
            "HostConfig": {"CpuShares": 512},
        }))
        .unwrap();
        let host = body.host_config.unwrap();
        assert_eq!(host.memory, Some(512 << 20));
        assert_eq!(host.binds, Some(vec!["/data:/mnt:ro".to_string()]));
        assert_eq!(host.cpu_shares, Some(512));
        assert_eq!(host.cap_add, Some(vec!["NET_BIND_SERVICE".to_string()]));
        assert_eq!(
            host.cap_drop,
            Some(vec!["ALL".to_string()]),
            "defaults not named stay"
        );
        assert!(host.port_bindings.unwrap().contains_key("8080/tcp"));
        assert_eq!(body.env, Some(vec!["A=1".to_string()]));
    }

    #[test]
    fn unknown_keys_are_refused() {
        for config in [
            json!({"mem_limt": "1g"}),
            json!({"HostConfig": {"Memroy": 1}}),
            json!({"Bogus": 1}),
        ] {
            let error = body_with(config.clone()).unwrap_err();
            assert!(
                matches!(error, Error::InvalidArgument(_)),
                "{config}: {error}"
            );
        }
        assert!(body_with(json!([1])).is_err());
    }
}
