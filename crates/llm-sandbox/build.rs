//! Builds the sandbox's init program (crate `llm-sandbox-init`) and leaves it in `OUT_DIR` for
//! the native backend to embed.
//!
//! Init must start from a clean image, never from a fork of the caller, and the library cannot
//! rely on re-executing "the current binary" (it runs in test binaries and in a Python
//! extension too), so the program is built here, as its own small binary, in release mode and
//! in a target directory of its own (a nested Cargo; the outer build's jobserver is shared).
//! `LLM_SANDBOX_INIT_BINARY=/path` embeds a prebuilt program instead (e.g. for packaging).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn main() {
    println!("cargo:rerun-if-env-changed=LLM_SANDBOX_INIT_BINARY");
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let embedded = out_dir.join("llm-sandbox-init");
    if let Some(prebuilt) = env::var_os("LLM_SANDBOX_INIT_BINARY") {
        println!("cargo:rerun-if-changed={}", Path::new(&prebuilt).display());
        copy(Path::new(&prebuilt), &embedded);
        return;
    }
    let manifest_dir = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let init_crate = manifest_dir.join("../llm-sandbox-init");
    for watched in ["src", "Cargo.toml"] {
        println!(
            "cargo:rerun-if-changed={}",
            init_crate.join(watched).display()
        );
    }
    println!("cargo:rerun-if-changed=../../Cargo.lock");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let target_dir = out_dir.join("init-target");
    let mut command = Command::new(cargo);
    command
        .args(["build", "--profile", "init", "--bin", "llm-sandbox-init"])
        .arg("--manifest-path")
        .arg(init_crate.join("Cargo.toml"))
        .arg("--target")
        .arg(&target)
        .arg("--target-dir")
        .arg(&target_dir)
        // Cargo reads a build script's stdout for instructions: keep the nested build off it.
        .stdout(Stdio::null());
    // A plain build: no lint driver (`cargo clippy` lints the crate itself), no outer target.
    for variable in [
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "CARGO_ENCODED_RUSTFLAGS",
    ] {
        command.env_remove(variable);
    }
    let status = command
        .status()
        .unwrap_or_else(|e| panic!("running cargo to build llm-sandbox-init: {e}"));
    assert!(
        status.success(),
        "building llm-sandbox-init failed ({status}); its errors are above"
    );
    copy(
        &target_dir
            .join(&target)
            .join("init")
            .join("llm-sandbox-init"),
        &embedded,
    );
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| {
        panic!(
            "copying the init program {} to {}: {e}",
            from.display(),
            to.display()
        )
    });
}
